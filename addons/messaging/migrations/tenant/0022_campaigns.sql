-- A campaign is one bulk submission from the dashboard (a CSV upload, or a send to several
-- numbers): its messages name it, so its progress, its counts by state, cancelling what is left
-- and retrying what failed work on the whole submission. No foreign key on messages.campaign_id:
-- the bulk insert of the send path would pay a check per row for a column it never sets (only the
-- dashboard sets it, in the transaction that creates the campaign), and campaigns are never
-- deleted on their own (erasing the workspace drops both tables).
CREATE TABLE campaigns (
    id bigserial PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    name text NOT NULL,
    source text NOT NULL CHECK (source IN ('csv', 'dashboard')),
    created_by text NOT NULL DEFAULT ''
);
ALTER TABLE messages ADD COLUMN campaign_id bigint;
CREATE INDEX messages_campaign ON messages (campaign_id, id) WHERE campaign_id IS NOT NULL;
