-- The workspace's message-text retention: texts are kept this many days after a message ended
-- (inbound SMS: after they arrived), then removed; metadata stays.
CREATE TABLE privacy_retention (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    keep_days integer NOT NULL DEFAULT 7 CHECK (keep_days BETWEEN 0 AND 365),
    updated_at timestamptz NOT NULL DEFAULT now()  -- who changed it: the audit trail says
);
INSERT INTO privacy_retention DEFAULT VALUES;
