-- Which process holds a delivery's claim (host:pid:boot id). The claim's lease (locked_until)
-- is renewed by that process while its attempt runs, so a claim expires, and the delivery is
-- offered again, only when the process died.
ALTER TABLE webhook_deliveries ADD COLUMN claimed_by text;
