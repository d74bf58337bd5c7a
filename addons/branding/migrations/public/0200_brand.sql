-- White label (issue 18, item 4): one brand per workspace, in the catalogue because it is needed
-- before a tenant transaction exists (error pages, the sign-in page, mails sent by the worker).
-- Every column '' / NULL means "not set here": the reseller's defaults (smsgw_brand_defaults), then
-- the platform's (SMSGW_PRODUCT_NAME ...) fill in.
CREATE TABLE public.workspace_brand (
    tenant_id bigint PRIMARY KEY REFERENCES public.tenant (id) ON DELETE CASCADE,
    product_name text NOT NULL DEFAULT '' CHECK (length(product_name) <= 60),
    colour_brand text NOT NULL DEFAULT '' CHECK (colour_brand ~ '^(#[0-9a-f]{6})?$'),
    colour_text text NOT NULL DEFAULT '' CHECK (colour_text ~ '^(#[0-9a-f]{6})?$'),
    mail_sender_name text NOT NULL DEFAULT '' CHECK (length(mail_sender_name) <= 60),
    support_email text NOT NULL DEFAULT '' CHECK (length(support_email) <= 254),
    theme text NOT NULL DEFAULT '' CHECK (length(theme) <= 40),
    -- The validated, re-encoded logo (branding/logo.py): PNG or sanitised SVG, at most 256 KiB.
    logo bytea CHECK (logo IS NULL OR octet_length(logo) <= 262144),
    logo_type text NOT NULL DEFAULT '' CHECK (logo_type IN ('', 'image/png', 'image/svg+xml')),
    logo_version integer NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Custom domains (issue 18, item 4): a workspace maps its own host name, proved by a DNS TXT record
-- (_smsgw-challenge.<host> = token) before it routes. Several workspaces may claim a host (nobody can
-- block it by claiming it first); the one that proves it owns it: a host is verified for one at most.
CREATE TABLE public.custom_domain (
    host text NOT NULL CHECK (host ~ '^[a-z0-9.-]{4,253}$'),
    tenant_id bigint NOT NULL REFERENCES public.tenant (id) ON DELETE CASCADE,
    token text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    checked_at timestamptz,
    verified_at timestamptz,
    last_error text NOT NULL DEFAULT '',
    PRIMARY KEY (host, tenant_id)
);
CREATE UNIQUE INDEX custom_domain_verified ON public.custom_domain (host) WHERE verified_at IS NOT NULL;
CREATE INDEX custom_domain_tenant ON public.custom_domain (tenant_id);

REVOKE ALL ON public.workspace_brand, public.custom_domain FROM {{app_role}};
GRANT SELECT, INSERT, UPDATE, DELETE ON public.workspace_brand, public.custom_domain TO {{app_role}};
