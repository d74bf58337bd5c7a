-- Platform operators (role Admin). They live in the catalogue, not in any tenant.
CREATE TABLE public.platform_admin (
    id bigserial PRIMARY KEY,
    email text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    name text NOT NULL DEFAULT '',
    password_hash text NOT NULL,
    is_active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX platform_admin_email_key ON public.platform_admin (lower(email));
