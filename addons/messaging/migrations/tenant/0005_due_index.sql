-- When the workspace's sweep is next due (lifecycle.next_due): the earliest valid_until of work
-- not yet sent, read from an index instead of a scan of every recipient.
CREATE INDEX recipients_valid_until ON recipients (valid_until)
    WHERE state IN ('pending', 'processed') AND valid_until IS NOT NULL;
