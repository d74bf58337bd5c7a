-- Inbound SMS bodies are removed after the workspace's retention period (privacy addon): when.
ALTER TABLE device_inbound ADD COLUMN redacted_at timestamptz;
CREATE INDEX device_inbound_unredacted ON device_inbound (received_at) WHERE redacted_at IS NULL;
