-- Scheduled work by the time it becomes due: while the worker is late, a web process looks
-- each second for what came due in the last second.
CREATE INDEX recipients_scheduled ON recipients (not_before) WHERE state = 'pending' AND not_before IS NOT NULL;
