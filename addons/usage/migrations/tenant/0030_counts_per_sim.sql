-- Sent, delivered and failed counts per SIM as well as per phone (the Statistics page): the key of
-- those rows names the recipient's SIM slot ('sim1'..'sim4'), '' when the phone chose it. Sums
-- over keys are what they were, so every figure read before reads the same.
CREATE OR REPLACE FUNCTION usage_events_added() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM added WHERE to_state IN ('sent', 'delivered', 'failed')) THEN
        RETURN NULL;
    END IF;
    INSERT INTO usage_counts AS u (day, metric, device_id, key, shard, n, segments)
    SELECT c.day, c.metric, c.device_id, c.key, pg_backend_pid(), count(*), sum(c.segments)
      FROM (SELECT (e.at AT TIME ZONE 'UTC')::date AS day, x.metric, coalesce(e.device_id, r.device_id, 0) AS device_id,
                   CASE WHEN x.metric = 'delivery_ms'
                        THEN usage_bucket(1000 * extract(epoch FROM e.at - r.created_at))::text
                        WHEN r.sim_slot IS NOT NULL THEN 'sim' || r.sim_slot ELSE '' END AS key,
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
