-- Access tokens issued through /3rdparty/v1/auth/token (and any jti revoked there),
-- and the scope each refresh-token family carries over to the access tokens it mints.
CREATE TABLE compat_access_tokens (
    jti text PRIMARY KEY CHECK (length(jti) BETWEEN 1 AND 100),
    user_id bigint,
    issued_by text NOT NULL DEFAULT '',
    family_id uuid,
    scope text NOT NULL DEFAULT '',
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE INDEX compat_access_tokens_expires ON compat_access_tokens (expires_at);

CREATE TABLE compat_token_families (
    family_id uuid PRIMARY KEY,
    scope text NOT NULL,
    ttl integer NOT NULL CHECK (ttl BETWEEN 1 AND 900),
    expires_at timestamptz NOT NULL
);
