-- Retention (privacy addon) removes SMS bodies from stored event payloads and endpoints' answers
-- (which may echo them) after the workspace's retention period: what it walks, oldest first.
-- The predicates are the ones retention queries with (core.datamap content columns).
CREATE INDEX webhook_events_unredacted ON webhook_events (created_at) WHERE (payload #>> '{data,body}') IS NOT NULL;
CREATE INDEX webhook_attempts_unredacted ON webhook_attempts (at) WHERE nullif(response_excerpt, '') IS NOT NULL;
