-- Message-text retention (the privacy addon blanks texts N days after a message ended): when a
-- text was removed, so answers can say so instead of showing an empty text. The partial index is
-- what the retention job walks (oldest first) and shrinks as texts are removed.
ALTER TABLE messages ADD COLUMN redacted_at timestamptz;
CREATE INDEX messages_unredacted ON messages (created_at) WHERE redacted_at IS NULL;
