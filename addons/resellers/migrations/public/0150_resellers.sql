-- Resellers (partners): the operator's record of each partner, its console's people and their
-- sign-ins, the workspaces it created for its customers, its reasoned support accesses, and the
-- addons the operator made available to it. Public schema: no tenant role sees any of it.
CREATE TABLE public.reseller (
    id bigserial PRIMARY KEY,
    slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$'),
    company text NOT NULL CHECK (length(company) BETWEEN 1 AND 200),
    contact_name text NOT NULL DEFAULT '' CHECK (length(contact_name) <= 200),
    contact_email text NOT NULL CHECK (length(contact_email) BETWEEN 3 AND 254),
    -- How the platform earns from it: a commission (basis points of its customers' retail
    -- invoices) or a wholesale price list (a billing plan code the reseller pays per workspace).
    pricing text NOT NULL CHECK (pricing IN ('commission', 'wholesale')),
    commission_bp integer NOT NULL DEFAULT 0 CHECK (commission_bp BETWEEN 0 AND 10000),
    wholesale_plan text NOT NULL DEFAULT '' CHECK (wholesale_plan = '' OR wholesale_plan ~ '^[a-z0-9][a-z0-9-]{0,39}$'),
    max_workspaces integer NOT NULL CHECK (max_workspaces BETWEEN 0 AND 100000),
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Its contact as the privacy addon's subject ("actor"), for export and erasure.
    contact_actor text GENERATED ALWAYS AS ('reseller-contact:' || id) STORED,
    CHECK (pricing <> 'wholesale' OR wholesale_plan <> '')
);

CREATE TABLE public.reseller_user (
    id bigserial PRIMARY KEY,
    reseller_id bigint NOT NULL REFERENCES public.reseller (id) ON DELETE CASCADE,
    email text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    name text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    password_hash text NOT NULL,
    role text NOT NULL CHECK (role IN ('reseller_admin', 'reseller_support')),
    is_active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- The person as the audit trail names them (actor "reseller:<id>"): the privacy subject.
    actor text GENERATED ALWAYS AS ('reseller:' || id) STORED
);
CREATE UNIQUE INDEX reseller_user_email ON public.reseller_user (reseller_id, lower(email));

CREATE TABLE public.reseller_session (
    id bigserial PRIMARY KEY,
    token_hash text NOT NULL UNIQUE,
    user_id bigint NOT NULL REFERENCES public.reseller_user (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    ip text NOT NULL DEFAULT '',
    user_agent text NOT NULL DEFAULT '',
    actor text GENERATED ALWAYS AS ('reseller:' || user_id) STORED
);

-- Which reseller a workspace belongs to (none: the platform's own customer).
CREATE TABLE public.reseller_tenant (
    tenant_id bigint PRIMARY KEY REFERENCES public.tenant (id) ON DELETE CASCADE,
    reseller_id bigint NOT NULL REFERENCES public.reseller (id),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reseller_tenant_reseller ON public.reseller_tenant (reseller_id);

-- A reseller person's reasoned, one-hour, read-only access to a workspace (the Admins' rule).
CREATE TABLE public.reseller_access_grant (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES public.reseller_user (id) ON DELETE CASCADE,
    tenant_id bigint NOT NULL REFERENCES public.tenant (id) ON DELETE CASCADE,
    reason text NOT NULL CHECK (length(reason) BETWEEN 10 AND 1000),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    ip text NOT NULL DEFAULT '',
    actor text GENERATED ALWAYS AS ('reseller:' || user_id) STORED
);
CREATE INDEX reseller_access_grant_user ON public.reseller_access_grant (user_id, tenant_id, expires_at);

-- Installed addons the operator made available to a reseller.
CREATE TABLE public.reseller_addon (
    reseller_id bigint NOT NULL REFERENCES public.reseller (id) ON DELETE CASCADE,
    addon text NOT NULL CHECK (addon ~ '^[a-z][a-z0-9_]{0,39}$'),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (reseller_id, addon)
);

REVOKE ALL ON public.reseller, public.reseller_user, public.reseller_session, public.reseller_tenant,
    public.reseller_access_grant, public.reseller_addon FROM {{app_role}};
GRANT SELECT, INSERT, UPDATE ON public.reseller, public.reseller_user, public.reseller_session TO {{app_role}};
GRANT SELECT, INSERT ON public.reseller_tenant, public.reseller_access_grant TO {{app_role}};
GRANT DELETE ON public.reseller_tenant TO {{app_role}};  -- erasing a workspace (the privacy addon's walk)
GRANT SELECT, INSERT, DELETE ON public.reseller_addon TO {{app_role}};
GRANT USAGE ON SEQUENCE public.reseller_id_seq, public.reseller_user_id_seq, public.reseller_session_id_seq,
    public.reseller_access_grant_id_seq TO {{app_role}};
