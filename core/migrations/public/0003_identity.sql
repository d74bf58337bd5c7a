-- RS256 signing keys (private half encrypted with the data key), login throttling,
-- admin sessions and admin access grants.
CREATE TABLE public.signing_key (
    kid text PRIMARY KEY,
    private_key_enc text NOT NULL,
    public_pem text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    retired_at timestamptz
);

CREATE TABLE public.login_failure (
    id bigserial PRIMARY KEY,
    key text NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failure_key_at ON public.login_failure (key, at);

CREATE TABLE public.admin_session (
    id bigserial PRIMARY KEY,
    token_hash text NOT NULL UNIQUE,
    admin_id bigint NOT NULL REFERENCES public.platform_admin (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    ip text NOT NULL DEFAULT '',
    user_agent text NOT NULL DEFAULT ''
);

CREATE TABLE public.admin_access_grant (
    id bigserial PRIMARY KEY,
    admin_id bigint NOT NULL REFERENCES public.platform_admin (id) ON DELETE CASCADE,
    tenant_id bigint NOT NULL REFERENCES public.tenant (id) ON DELETE CASCADE,
    reason text NOT NULL CHECK (length(btrim(reason)) >= 10),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    ip text NOT NULL DEFAULT ''
);
CREATE INDEX admin_access_grant_lookup ON public.admin_access_grant (admin_id, tenant_id, expires_at);
