-- Abuse and fraud monitoring (addons/abuse): the workspace's alerts with their evidence, and the
-- countries it has sent to (a first send to a new one is a signal).
CREATE TABLE abuse_alerts (
    id bigserial PRIMARY KEY,
    rule text NOT NULL,
    key text NOT NULL DEFAULT '',
    severity smallint NOT NULL CHECK (severity BETWEEN 1 AND 3),
    action text NOT NULL,
    status text NOT NULL DEFAULT 'open'
        CHECK (status IN ('open', 'released', 'rejected', 'false_positive', 'closed')),
    summary text NOT NULL DEFAULT '',
    evidence jsonb NOT NULL DEFAULT '{}',
    held integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    resolved_by text,
    resolution text
);
CREATE UNIQUE INDEX abuse_alerts_open_key ON abuse_alerts (rule, key) WHERE status = 'open';
CREATE INDEX abuse_alerts_created ON abuse_alerts (created_at);

CREATE TABLE abuse_countries (
    calling_code text PRIMARY KEY,
    first_at timestamptz NOT NULL DEFAULT now()
);

-- Recipients accepted per hour (the volume baseline: the workspace's own 7-day hourly p95), counted
-- by a statement trigger into one row per hour and server session, so concurrent sends never wait
-- for each other's row and a process (re)starting reads 7 days in a few hundred rows.
CREATE TABLE abuse_hourly (
    hour timestamptz NOT NULL,
    shard integer NOT NULL,
    n bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, shard)
);
CREATE FUNCTION abuse_recipients_added() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
BEGIN
    INSERT INTO abuse_hourly AS h (hour, shard, n)
    SELECT date_trunc('hour', now()), pg_backend_pid(), count(*) FROM added HAVING count(*) > 0
    ON CONFLICT (hour, shard) DO UPDATE SET n = h.n + excluded.n;
    RETURN NULL;
END
$fn$;
CREATE TRIGGER abuse_recipients_added AFTER INSERT ON recipients
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION abuse_recipients_added();

-- The new-workspace sandbox (rule "sandbox"): the numbers it may send to while sandboxed, listed by
-- its Customer (listed_by) or verified by a code the number received (verified_at).
CREATE TABLE abuse_sandbox_numbers (
    phone text PRIMARY KEY,
    listed_by text,
    verified_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The devices each person signed in from (a hash of the browser's User-Agent; the text is not kept):
-- a sign-in from one never seen is an alert and a mail to the person.
CREATE TABLE abuse_known_devices (
    user_id bigint NOT NULL,
    device text NOT NULL,
    first_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, device)
);
