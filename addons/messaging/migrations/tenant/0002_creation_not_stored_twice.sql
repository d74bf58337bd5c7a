-- A recipient's creation (pending, from nothing) is the first entry of its history, said by
-- recipients.created_at and messages.source; it is no longer stored as a recipient_events row
-- too (a bulk send wrote twice the rows). Remove the rows written before, so history shows
-- creation once.
DELETE FROM recipient_events WHERE from_state IS NULL AND to_state = 'pending';
