-- Subscription lifecycle (issue 17, items 1-2): what a period's end needs to know.
--
-- anchor_day: the day of the month periods end on. A period that starts on 31 January ends on
-- 28/29 February and the next on 31 March: without the anchor each short month would pull every
-- later period end earlier for good.
-- pending_interval: with pending_plan_version_id, the billing interval that starts at period end
-- (a downgrade, or a switch between monthly and yearly billing, waits for the period to end).
-- cancelled_at: when the subscription ended (at period end after a cancel, or at once when the
-- workspace is erased).
ALTER TABLE public.billing_subscriptions
    ADD COLUMN anchor_day smallint NOT NULL DEFAULT 1 CHECK (anchor_day BETWEEN 1 AND 31),
    ADD COLUMN pending_interval text CHECK (pending_interval IN ('month', 'year')),
    ADD COLUMN cancelled_at timestamptz;
CREATE INDEX billing_subscriptions_status ON public.billing_subscriptions (status, tenant_id);
