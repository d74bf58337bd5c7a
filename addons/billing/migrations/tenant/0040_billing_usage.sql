-- Billable usage of a period (addons/billing/metering.py): accepted segments in [p_start, p_end).
--
-- Whole UTC days come from the usage addon's daily aggregates (metric 'submitted', written by a
-- statement trigger in the transaction that stores the recipients). A period that starts (or ended)
-- in the middle of a UTC day counts that day's part from the message tables instead: a message's
-- recipients are stored with it, in one transaction, so they share its created_at, which is the
-- time the aggregate files them under. A day still in progress counts whole when the period ends
-- after now: nothing after now exists yet.
--
-- With p_lock, the call first takes that transaction-level advisory lock (the quota's exact path):
-- a VOLATILE function's statements each take a new snapshot, so the sum sees every send committed
-- by the transaction that held the lock before, in one round trip.
CREATE FUNCTION billing_usage(p_start timestamptz, p_end timestamptz, p_lock bigint DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $fn$
DECLARE
    first_day date := (p_start AT TIME ZONE 'UTC')::date;
    last_day date := (p_end AT TIME ZONE 'UTC')::date;
    whole_from date;
    whole_to date;  -- exclusive
    total bigint := 0;
BEGIN
    IF p_lock IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(p_lock);
    END IF;
    IF p_end <= p_start THEN
        RETURN 0;
    END IF;
    whole_from := CASE WHEN p_start = first_day::timestamp AT TIME ZONE 'UTC' THEN first_day ELSE first_day + 1 END;
    whole_to := CASE WHEN p_end = last_day::timestamp AT TIME ZONE 'UTC' OR p_end > now() THEN
                     CASE WHEN p_end = last_day::timestamp AT TIME ZONE 'UTC' THEN last_day ELSE last_day + 1 END
                     ELSE last_day END;
    IF whole_to > whole_from THEN
        SELECT coalesce(sum(segments), 0) INTO total FROM usage_counts
         WHERE metric = 'submitted' AND day >= whole_from AND day < whole_to;
    END IF;
    -- The parts of days outside the whole ones: [p_start, whole_from) and [whole_to, p_end).
    total := total + (
        SELECT coalesce(sum(m.segments * (SELECT count(*) FROM recipients r WHERE r.message_id = m.id)), 0)
          FROM messages m
         WHERE m.created_at >= p_start AND m.created_at < p_end
           AND (m.created_at < whole_from::timestamp AT TIME ZONE 'UTC'
                OR m.created_at >= greatest(whole_to, whole_from)::timestamp AT TIME ZONE 'UTC'));
    RETURN total;
END
$fn$;
