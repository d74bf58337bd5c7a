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

-- Workspaces made before billing was installed get the default plan's subscription, a month from
-- now; the due-work repair pass arms their renewals (within its hour).
INSERT INTO public.billing_subscriptions (tenant_id, plan_version_id, status, period_start, period_end, anchor_day)
SELECT t.id, p.id, 'active', now(), now() + interval '1 month', extract(day FROM now() AT TIME ZONE 'UTC')::smallint
  FROM public.tenant t
  JOIN public.billing_plan_versions p ON p.plan_code = 'free' AND p.retired_at IS NULL
ON CONFLICT (tenant_id) DO NOTHING;
