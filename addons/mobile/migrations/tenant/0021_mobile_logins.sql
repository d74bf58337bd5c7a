-- The app's "login and password" (shown in its Cloud Server settings after it registered) and the
-- one-time codes it asks for to add another phone. Both only enroll phones, and only as far as the
-- enrollment token the first phone used still allows (its phone count, expiry and revocation): a
-- password or a code never carries more than the token it came from, and dies with it or with the
-- phone that holds it.
CREATE TABLE mobile_logins (
    id bigserial PRIMARY KEY,
    login text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    enrollment_id bigint NOT NULL REFERENCES mobile_enrollments (id) ON DELETE CASCADE,
    device_id bigint NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    password_changed_at timestamptz
);

CREATE TABLE mobile_codes (
    id bigserial PRIMARY KEY,
    code_hash text NOT NULL UNIQUE,
    login_id bigint NOT NULL REFERENCES mobile_logins (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);

-- Which login a phone joined through (its own, for the phone that was given the password; the
-- login of the code or password it used, for a phone added with one).
ALTER TABLE mobile_devices ADD COLUMN login_id bigint REFERENCES mobile_logins (id) ON DELETE SET NULL;

-- Requests to an app phone to send again the SMS it received between two times
-- (MessagesExportRequested on its event stream; the app posts them to our ingest URL, where a
-- message already stored is not stored twice). Told to the phone on its stream at once, or when
-- it next opens one (export_pending spares the stream's opening a query when none waits).
CREATE TABLE mobile_exports (
    id bigserial PRIMARY KEY,
    device_id bigint NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    since timestamptz NOT NULL,
    until timestamptz NOT NULL CHECK (until > since),
    requested_by text NOT NULL DEFAULT '',
    requested_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz
);
CREATE INDEX mobile_exports_waiting ON mobile_exports (device_id) WHERE sent_at IS NULL;
ALTER TABLE mobile_devices ADD COLUMN export_pending boolean NOT NULL DEFAULT false;
