-- A reseller's brand: what the workspaces it sells show where their own brand settings say nothing
-- (the branding addon's smsgw_brand_defaults), and whether their Customers may change it.
CREATE TABLE public.reseller_brand (
    reseller_id bigint PRIMARY KEY REFERENCES public.reseller (id) ON DELETE CASCADE,
    product_name text NOT NULL DEFAULT '' CHECK (length(product_name) <= 60),
    mail_sender_name text NOT NULL DEFAULT '' CHECK (length(mail_sender_name) <= 60),
    support_email text NOT NULL DEFAULT '' CHECK (length(support_email) <= 254),
    colour_brand text NOT NULL DEFAULT '' CHECK (colour_brand = '' OR colour_brand ~ '^#[0-9a-f]{6}$'),
    colour_text text NOT NULL DEFAULT '' CHECK (colour_text = '' OR colour_text ~ '^#[0-9a-f]{6}$'),
    theme text NOT NULL DEFAULT '' CHECK (length(theme) <= 60),
    workspaces_may_rebrand boolean NOT NULL DEFAULT true,
    updated_at timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT, INSERT, UPDATE ON public.reseller_brand TO {{app_role}};
