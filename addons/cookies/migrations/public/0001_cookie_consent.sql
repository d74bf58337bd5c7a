-- Proof of cookie consent: one row per choice a browser made (banner, settings, or an objection to
-- profiling that overrode it). consent_id is the random id the browser's consent cookie carries; a
-- row names a person (tenant_id, subject) only when a signed-in member chose on their workspace.
-- No IP address, no user agent.
CREATE TABLE public.cookie_consent (
    id bigserial PRIMARY KEY,
    consent_id text NOT NULL,
    version text NOT NULL,  -- the cookie policy version the choice answers (SMSGW_COOKIE_POLICY_VERSION)
    choice text NOT NULL CHECK (choice IN ('analytics', 'essential')),
    source text NOT NULL CHECK (source IN ('banner', 'settings', 'objection')),
    tenant_id bigint,
    subject text NOT NULL DEFAULT '',  -- "user:<id>" when signed in, else ''
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cookie_consent_id ON public.cookie_consent (consent_id, created_at DESC);
CREATE INDEX cookie_consent_subject ON public.cookie_consent (tenant_id, subject) WHERE tenant_id IS NOT NULL;

REVOKE ALL ON public.cookie_consent FROM {{app_role}};
GRANT SELECT, INSERT, UPDATE ON public.cookie_consent TO {{app_role}};
GRANT USAGE ON SEQUENCE public.cookie_consent_id_seq TO {{app_role}};
