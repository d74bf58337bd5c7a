-- Abuse monitoring, issue 20's remaining parts (addons/abuse).
--
-- Sandbox verification by SMS code: one open code per number, stored as an HMAC digest (never the
-- code), with its expiry and the attempts made at it; a right code deletes the row (single use).
CREATE TABLE abuse_sandbox_codes (
    phone text PRIMARY KEY,
    digest text NOT NULL,
    expires_at timestamptz NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    sent_at timestamptz NOT NULL DEFAULT now(),
    requested_by text NOT NULL DEFAULT ''
);

-- When the owners were mailed about the alert (rule action notify or more); NULL: not yet.
ALTER TABLE abuse_alerts ADD COLUMN notified_at timestamptz;
CREATE INDEX abuse_alerts_untold ON abuse_alerts (id) WHERE notified_at IS NULL AND action <> 'record';

-- Per API token, how many minutes it was used in each hour of the day (UTC): 24 counters, one row
-- per token (bounded), kept incrementally (a token's first request of a minute adds one).
CREATE TABLE abuse_token_hours (
    token text PRIMARY KEY,
    counts integer[] NOT NULL DEFAULT array_fill(0, ARRAY[24]),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Per API token, the client addresses it was used from lately (every web process writes here, so
-- the "token used from many addresses" window is the same in all of them); old rows are pruned.
CREATE TABLE abuse_token_ips (
    token text NOT NULL,
    ip text NOT NULL,
    seen_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (token, ip)
);
