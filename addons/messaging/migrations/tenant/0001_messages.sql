-- Outgoing messages and their recipients (one unit of work per recipient), each
-- recipient's history, idempotency keys and the suppression (opt-out) list.
CREATE TABLE messages (
    id bigserial PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    text text NOT NULL,
    encoding text NOT NULL CHECK (encoding IN ('GSM-7', 'UCS-2')),
    segments integer NOT NULL,
    priority smallint NOT NULL DEFAULT 0 CHECK (priority BETWEEN -100 AND 100),
    valid_until timestamptz,
    send_at timestamptz,
    delivery_report boolean NOT NULL DEFAULT true,
    reference text,
    device_id bigint,
    sim_slot smallint,
    source text NOT NULL DEFAULT 'api',
    created_by text NOT NULL DEFAULT ''
);
CREATE INDEX messages_reference ON messages (reference) WHERE reference IS NOT NULL;
CREATE INDEX messages_created ON messages (created_at);

CREATE TABLE recipients (
    id bigserial PRIMARY KEY,
    message_id bigint NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    phone text NOT NULL,
    state text NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'processed', 'sent', 'delivered', 'failed', 'cancelled', 'expired')),
    priority smallint NOT NULL DEFAULT 0,
    not_before timestamptz,
    valid_until timestamptz,
    requested_device_id bigint,
    requested_sim smallint,
    device_id bigint,
    sim_slot smallint,
    attempts integer NOT NULL DEFAULT 0,
    excluded_devices bigint[] NOT NULL DEFAULT '{}',
    error_code text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    claimed_at timestamptz,
    sent_at timestamptz,
    delivered_at timestamptz,
    failed_at timestamptz
);
CREATE INDEX recipients_message ON recipients (message_id);
CREATE INDEX recipients_queue ON recipients (priority DESC, id) WHERE state = 'pending';
CREATE INDEX recipients_claimed ON recipients (device_id, claimed_at) WHERE state = 'processed';
CREATE INDEX recipients_phone ON recipients (phone, id DESC);
CREATE INDEX recipients_device_sent ON recipients (device_id, sent_at) WHERE sent_at IS NOT NULL;
CREATE INDEX recipients_device_claims ON recipients (device_id, claimed_at) WHERE claimed_at IS NOT NULL;

CREATE TABLE recipient_events (
    id bigserial PRIMARY KEY,
    recipient_id bigint NOT NULL REFERENCES recipients (id) ON DELETE CASCADE,
    at timestamptz NOT NULL DEFAULT now(),
    from_state text,
    to_state text NOT NULL,
    source text NOT NULL,
    device_id bigint,
    error_code text,
    reported_at timestamptz
);
CREATE INDEX recipient_events_recipient ON recipient_events (recipient_id, id);
CREATE INDEX recipient_events_claims ON recipient_events (device_id, at) WHERE to_state = 'processed';

CREATE TABLE idempotency_keys (
    key text PRIMARY KEY,
    request_hash text NOT NULL,
    status integer NOT NULL,
    response jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

CREATE TABLE suppressions (
    phone text PRIMARY KEY,
    reason text NOT NULL DEFAULT '',
    source text NOT NULL DEFAULT 'manual',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE messaging_settings (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    max_attempts integer NOT NULL DEFAULT 3,
    sticky_sender boolean NOT NULL DEFAULT false,
    claim_timeout_seconds integer NOT NULL DEFAULT 600
);
INSERT INTO messaging_settings DEFAULT VALUES;
