-- Usage metering: daily counts per workspace, written in the same transaction as the work.
--
-- Statement triggers on the durable records (messages, recipients, recipient_events,
-- device_inbound, webhook_attempts) add each statement's rows to usage_counts, so what is counted
-- commits or rolls back with the work itself: group commit, retries and a crash count each row once.
-- Only INSERTs are counted: retention (which redacts text) and erasure (which deletes rows) change
-- nothing already counted, which is what billing needs.
--
-- Hot paths (submit, claims, reports) run many transactions at once. One counter row per day and
-- metric would make them wait for each other's commit on its row lock, so each database session
-- writes rows of its own: ``shard`` is the backend's pid, which no two live sessions share, so no
-- transaction ever waits for another's counter row. A day's figure is the sum over its shards.
CREATE TABLE usage_counts (
    day date NOT NULL,
    metric text NOT NULL,
    device_id bigint NOT NULL DEFAULT 0,   -- 0: not about one phone
    key text NOT NULL DEFAULT '',          -- API calls: principal|family; latency histograms: bucket
    shard integer NOT NULL,
    n bigint NOT NULL DEFAULT 0,
    segments bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, metric, device_id, key, shard)
);

-- Latency buckets: 4 per doubling (each ~19 % wide), from milliseconds; bucket b holds
-- 2^((b-1)/4) <= ms+1 < 2^(b/4).
CREATE FUNCTION usage_bucket(ms double precision) RETURNS integer
LANGUAGE sql IMMUTABLE AS $fn$ SELECT greatest(0, ceil(4 * ln(greatest(ms, 0) + 1) / ln(2)))::integer $fn$;

CREATE FUNCTION usage_messages_added() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
BEGIN
    INSERT INTO usage_counts AS u (day, metric, shard, n, segments)
    SELECT (a.created_at AT TIME ZONE 'UTC')::date, 'messages', pg_backend_pid(), count(*), sum(a.segments)
      FROM added a GROUP BY 1
    ON CONFLICT (day, metric, device_id, key, shard)
    DO UPDATE SET n = u.n + excluded.n, segments = u.segments + excluded.segments;
    RETURN NULL;
END
$fn$;
CREATE TRIGGER usage_messages_added AFTER INSERT ON messages
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION usage_messages_added();

-- Submitted: one per recipient, with its message's segments (what a send will cost).
CREATE FUNCTION usage_recipients_added() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
BEGIN
    INSERT INTO usage_counts AS u (day, metric, device_id, shard, n, segments)
    SELECT (a.created_at AT TIME ZONE 'UTC')::date, 'submitted', coalesce(a.requested_device_id, 0),
           pg_backend_pid(), count(*), sum(m.segments)
      FROM added a JOIN messages m ON m.id = a.message_id GROUP BY 1, 3
    ON CONFLICT (day, metric, device_id, key, shard)
    DO UPDATE SET n = u.n + excluded.n, segments = u.segments + excluded.segments;
    RETURN NULL;
END
$fn$;
CREATE TRIGGER usage_recipients_added AFTER INSERT ON recipients
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION usage_recipients_added();

-- Each recorded state change that counts: sent (to sent, or straight to delivered from a state
-- before sent: it left the phone), delivered, failed; per phone. Delivered also adds to the
-- delivery-time histogram (accepted -> delivered). Claims (to processed) are the hottest statement
-- and count for nothing here: the trigger returns after one look at the statement's rows.
CREATE FUNCTION usage_events_added() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM added WHERE to_state IN ('sent', 'delivered', 'failed')) THEN
        RETURN NULL;
    END IF;
    INSERT INTO usage_counts AS u (day, metric, device_id, key, shard, n, segments)
    SELECT c.day, c.metric, c.device_id, c.key, pg_backend_pid(), count(*), sum(c.segments)
      FROM (SELECT (e.at AT TIME ZONE 'UTC')::date AS day, x.metric, coalesce(e.device_id, r.device_id, 0) AS device_id,
                   CASE WHEN x.metric = 'delivery_ms'
                        THEN usage_bucket(1000 * extract(epoch FROM e.at - r.created_at))::text ELSE '' END AS key,
                   m.segments
              FROM added e
              JOIN recipients r ON r.id = e.recipient_id
              JOIN messages m ON m.id = r.message_id
             CROSS JOIN LATERAL (VALUES
                   (e.to_state),
                   (CASE WHEN e.to_state = 'delivered' AND e.from_state IS DISTINCT FROM 'sent' THEN 'sent' END),
                   (CASE WHEN e.to_state = 'delivered' THEN 'delivery_ms' END)) AS x (metric)
             WHERE e.to_state IN ('sent', 'delivered', 'failed') AND x.metric IS NOT NULL) c
     GROUP BY c.day, c.metric, c.device_id, c.key
    ON CONFLICT (day, metric, device_id, key, shard)
    DO UPDATE SET n = u.n + excluded.n, segments = u.segments + excluded.segments;
    RETURN NULL;
END
$fn$;
CREATE TRIGGER usage_events_added AFTER INSERT ON recipient_events
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION usage_events_added();

-- Inbound SMS, per phone, on the day they reached us (a duplicate upload inserts nothing).
CREATE FUNCTION usage_inbound_added() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
BEGIN
    INSERT INTO usage_counts AS u (day, metric, device_id, shard, n)
    SELECT (a.uploaded_at AT TIME ZONE 'UTC')::date, 'inbound', a.device_id, pg_backend_pid(), count(*)
      FROM added a GROUP BY 1, 3
    ON CONFLICT (day, metric, device_id, key, shard) DO UPDATE SET n = u.n + excluded.n;
    RETURN NULL;
END
$fn$;
CREATE TRIGGER usage_inbound_added AFTER INSERT ON device_inbound
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION usage_inbound_added();

-- Webhook attempts: delivered (a 2xx answer) or failed (anything else, or no answer).
CREATE FUNCTION usage_webhook_attempts_added() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
BEGIN
    INSERT INTO usage_counts AS u (day, metric, shard, n)
    SELECT (a.at AT TIME ZONE 'UTC')::date,
           CASE WHEN a.status_code BETWEEN 200 AND 299 THEN 'webhook_delivered' ELSE 'webhook_failed' END,
           pg_backend_pid(), count(*)
      FROM added a GROUP BY 1, 2
    ON CONFLICT (day, metric, device_id, key, shard) DO UPDATE SET n = u.n + excluded.n;
    RETURN NULL;
END
$fn$;
CREATE TRIGGER usage_webhook_attempts_added AFTER INSERT ON webhook_attempts
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION usage_webhook_attempts_added();
