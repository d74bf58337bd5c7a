-- Phone alerts (addons/devices/health.py): a phone with waiting work went offline, or its battery
-- is low. One open alert per phone and kind; it ends when the phone is back (or charged). The
-- workspace's members hear of it by e-mail (once when it starts, once when it ends, if they
-- were told it started) and see it as a dashboard banner, each as their preference says.
CREATE TABLE device_alerts (
    id bigserial PRIMARY KEY,
    device_id bigint NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('offline', 'battery')),
    started_at timestamptz NOT NULL DEFAULT now(),
    waiting integer NOT NULL DEFAULT 0,          -- offline: messages waiting when it went offline
    battery_level integer,                       -- battery: the level reported
    ended_at timestamptz,
    notified_at timestamptz,                     -- its e-mail went out
    recovery_notified_at timestamptz             -- the e-mail that it ended went out
);
CREATE UNIQUE INDEX device_alerts_open ON device_alerts (device_id, kind) WHERE ended_at IS NULL;
-- What the notice job still has to tell.
CREATE INDEX device_alerts_untold ON device_alerts (id)
    WHERE notified_at IS NULL OR (ended_at IS NOT NULL AND recovery_notified_at IS NULL);

-- Each member's choice; no row: both on.
CREATE TABLE device_alert_prefs (
    user_id bigint PRIMARY KEY,
    email boolean NOT NULL DEFAULT true,
    banner boolean NOT NULL DEFAULT true,
    updated_at timestamptz NOT NULL DEFAULT now()
);
