-- "Find my workspace" (issue 22, item 5): which workspaces an email address belongs to, without
-- looking into every workspace. A row is written when someone signs up, accepts an invitation or
-- signs in; it is a hint, checked against the workspace's own users before any mail names it (a
-- changed or erased address simply no longer matches, and its row is dropped then).
-- email_key: HMAC-SHA256 of the lower-cased address under the platform's link secret, never the address.
CREATE TABLE public.member_directory (
    email_key text NOT NULL,
    tenant_id bigint NOT NULL REFERENCES public.tenant (id) ON DELETE CASCADE,
    seen_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (email_key, tenant_id)
);
CREATE INDEX member_directory_tenant ON public.member_directory (tenant_id);
