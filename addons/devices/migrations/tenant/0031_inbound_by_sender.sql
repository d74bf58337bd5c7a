-- A conversation (and its live check, every few seconds while it is open) reads one sender's
-- inbound SMS: by index, not by a scan of every SMS the workspace received.
CREATE INDEX device_inbound_sender ON device_inbound (sender, id DESC);
