-- Phones of one tenant, their one-time pairing codes, and inbound SMS as uploaded.
CREATE TABLE devices (
    id bigserial PRIMARY KEY,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    device_uid text NOT NULL UNIQUE CHECK (length(device_uid) BETWEEN 1 AND 200),
    model text NOT NULL DEFAULT '',
    os_version text NOT NULL DEFAULT '',
    app_version text NOT NULL DEFAULT '',
    sims jsonb NOT NULL DEFAULT '[]',
    token_hash text UNIQUE,
    token_hint text NOT NULL DEFAULT '',
    enabled boolean NOT NULL DEFAULT true,
    online boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz,
    battery_level integer CHECK (battery_level BETWEEN 0 AND 100),
    charging boolean,
    signal integer,
    queue_length integer NOT NULL DEFAULT 0,
    settings jsonb NOT NULL DEFAULT '{}',
    settings_version integer NOT NULL DEFAULT 1,
    removed_at timestamptz
);

CREATE TABLE pairing_codes (
    code_hash text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    created_by text NOT NULL DEFAULT '',
    device_id bigint REFERENCES devices (id) ON DELETE SET NULL
);

CREATE TABLE device_inbound (
    id bigserial PRIMARY KEY,
    device_id bigint NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    phone_message_id text NOT NULL CHECK (length(phone_message_id) BETWEEN 1 AND 200),
    sender text NOT NULL,
    body text NOT NULL,
    sim_slot integer,
    received_at timestamptz NOT NULL,
    uploaded_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (device_id, phone_message_id)
);
