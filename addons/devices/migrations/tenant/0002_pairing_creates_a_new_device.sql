-- A pairing code creates a new device; only a code made on a device's own page ("Re-pair this
-- phone") replaces that device's token. A phone's device_uid (which the phone chooses) therefore
-- no longer decides which device a pairing takes over, and two devices may share one.
ALTER TABLE devices DROP CONSTRAINT devices_device_uid_key;
ALTER TABLE pairing_codes ADD COLUMN repair_device_id bigint REFERENCES devices (id) ON DELETE CASCADE;
