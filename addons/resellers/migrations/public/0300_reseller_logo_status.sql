-- A reseller's logo (the branding addon's checks: a re-written PNG or a sanitised SVG), shown on its
-- console and, where a workspace set none of its own, on the workspaces it sells.
ALTER TABLE public.reseller_brand
    ADD COLUMN logo bytea CHECK (logo IS NULL OR octet_length(logo) <= 262144),
    ADD COLUMN logo_type text NOT NULL DEFAULT '' CHECK (logo_type IN ('', 'image/png', 'image/svg+xml')),
    ADD COLUMN logo_version integer NOT NULL DEFAULT 0;

-- Why the operator suspended a reseller (shown to its people on the console's sign-in page), and when.
ALTER TABLE public.reseller
    ADD COLUMN status_reason text NOT NULL DEFAULT '' CHECK (length(status_reason) <= 1000),
    ADD COLUMN status_changed_at timestamptz;
