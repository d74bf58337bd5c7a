-- A reseller's own host names (partners.acme.com, sms.acme.com): its console and its sign-up page
-- answer there once the reseller proved the host with a DNS TXT record (the branding addon's proof).
CREATE TABLE public.reseller_domain (
    host text NOT NULL CHECK (host ~ '^[a-z0-9.-]{4,253}$'),
    reseller_id bigint NOT NULL REFERENCES public.reseller (id) ON DELETE CASCADE,
    token text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    verified_at timestamptz,
    last_error text NOT NULL DEFAULT '',
    PRIMARY KEY (host, reseller_id)
);
CREATE UNIQUE INDEX reseller_domain_verified ON public.reseller_domain (host) WHERE verified_at IS NOT NULL;

REVOKE ALL ON public.reseller_domain FROM {{app_role}};
GRANT SELECT, INSERT, UPDATE, DELETE ON public.reseller_domain TO {{app_role}};
