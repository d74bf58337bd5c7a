-- Identity: profile fields, browser sessions, refresh tokens, API tokens, one-time links.
ALTER TABLE users
    ADD COLUMN phone text NOT NULL DEFAULT '',
    ADD COLUMN job_title text NOT NULL DEFAULT '',
    ADD COLUMN email_verified_at timestamptz,
    ADD COLUMN password_changed_at timestamptz,
    ADD COLUMN last_login_at timestamptz,
    ADD COLUMN invited_by bigint REFERENCES users (id) ON DELETE SET NULL;

CREATE TABLE sessions (
    id bigserial PRIMARY KEY,
    token_hash text NOT NULL UNIQUE,
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    ip text NOT NULL DEFAULT '',
    user_agent text NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE refresh_tokens (
    id bigserial PRIMARY KEY,
    family_id uuid NOT NULL,
    token_hash text NOT NULL UNIQUE,
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    family_expires_at timestamptz NOT NULL,
    used_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

CREATE TABLE api_tokens (
    id bigserial PRIMARY KEY,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    token_hash text NOT NULL UNIQUE,
    hint text NOT NULL,
    scopes text[] NOT NULL,
    created_by bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at timestamptz
);

CREATE TABLE one_time_links (
    nonce text PRIMARY KEY,
    purpose text NOT NULL,
    used_at timestamptz NOT NULL DEFAULT now()
);
