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
