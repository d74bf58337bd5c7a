-- People of one tenant: its Customer (owner) and Users.
CREATE TABLE users (
    id bigserial PRIMARY KEY,
    email text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    name text NOT NULL DEFAULT '',
    password_hash text,
    role text NOT NULL CHECK (role IN ('customer', 'user')),
    is_active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- Tenant-level settings contributed by addons (see smsgw_settings_schema).
CREATE TABLE settings (
    key text PRIMARY KEY,
    value jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
