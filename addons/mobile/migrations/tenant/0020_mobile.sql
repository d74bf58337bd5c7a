-- Enrollment tokens: what a Customer gives the app as its "Private Token" (hashed, expiring,
-- revocable, good for a set number of phones).
CREATE TABLE mobile_enrollments (
    id bigserial PRIMARY KEY,
    token_hash text NOT NULL UNIQUE,
    token_hint text NOT NULL DEFAULT '',
    name text NOT NULL DEFAULT '' CHECK (length(name) <= 100),
    phones integer NOT NULL CHECK (phones BETWEEN 1 AND 1000),
    used integer NOT NULL DEFAULT 0 CHECK (used >= 0),
    created_by text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);

-- A device that joined through the app: its enrollment, its webhook signing key (encrypted), the
-- device it may replace (a phone that registered again after a 401) and what became of that.
CREATE TABLE mobile_devices (
    device_id bigint PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    enrollment_id bigint REFERENCES mobile_enrollments (id) ON DELETE SET NULL,
    signing_key_enc text NOT NULL,
    push_token text,
    app_version text NOT NULL DEFAULT '',
    replaces_device_id bigint,
    replaced_by_device_id bigint,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- What was offered to an app phone by GET /message and not acknowledged yet (the app keeps being
-- offered a message until it reports a state for it), and cancellations it was asked to make.
CREATE TABLE mobile_offers (
    recipient_id bigint PRIMARY KEY,
    device_id bigint NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    offered_at timestamptz NOT NULL DEFAULT now(),
    acked_at timestamptz,
    cancel_requested_at timestamptz
);
CREATE INDEX mobile_offers_open ON mobile_offers (device_id) WHERE acked_at IS NULL;
