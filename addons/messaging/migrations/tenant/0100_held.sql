-- Held recipients (issue 20): accepted and durable, never offered to a phone, until released
-- (back to pending) or rejected (failed, error held-rejected). An addon's accept-time screening
-- (smsgw_messages_screening) or a later review holds them; hold_reason says why, for people.
ALTER TABLE recipients DROP CONSTRAINT IF EXISTS recipients_state_check;
ALTER TABLE recipients ADD CONSTRAINT recipients_state_check
    CHECK (state IN ('pending', 'held', 'processed', 'sent', 'delivered', 'failed', 'cancelled', 'expired'));
ALTER TABLE recipients ADD COLUMN IF NOT EXISTS hold_reason text;
CREATE INDEX IF NOT EXISTS recipients_held ON recipients (id) WHERE state = 'held';
-- The sweep expires held work too (its valid_until still applies).
DROP INDEX IF EXISTS recipients_valid_until;
CREATE INDEX recipients_valid_until ON recipients (valid_until)
    WHERE state IN ('pending', 'held', 'processed') AND valid_until IS NOT NULL;
