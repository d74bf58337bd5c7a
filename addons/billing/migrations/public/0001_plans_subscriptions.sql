-- Plans and subscriptions: the operator's record about each workspace (public schema; a tenant
-- role never sees it). Money is integer minor units of the plan's currency (cents for EUR).
--
-- A plan is a code ("free", "pro") with versions: changing a price or a limit adds a version and
-- retires the previous one; a subscription keeps the version it has until it renews.
CREATE TABLE public.billing_plan_versions (
    id bigserial PRIMARY KEY,
    plan_code text NOT NULL CHECK (plan_code ~ '^[a-z0-9][a-z0-9-]{0,39}$'),
    version integer NOT NULL CHECK (version > 0),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 80),
    currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    monthly_price bigint NOT NULL CHECK (monthly_price >= 0),
    yearly_price bigint NOT NULL CHECK (yearly_price >= 0),
    included_segments bigint NOT NULL CHECK (included_segments >= 0),
    max_devices integer CHECK (max_devices >= 0),       -- NULL: no limit
    max_members integer CHECK (max_members >= 0),       -- NULL: no limit
    api_per_minute integer CHECK (api_per_minute > 0),  -- NULL: no limit
    overage_per_1000 bigint CHECK (overage_per_1000 >= 0),  -- NULL: hard stop at included_segments
    trial_days integer NOT NULL DEFAULT 0 CHECK (trial_days >= 0),
    addons text[] NOT NULL DEFAULT '{}',                -- addons this plan unlocks
    public boolean NOT NULL DEFAULT true,               -- listed on the Pricing page
    sort_order integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    retired_at timestamptz,                             -- set when a newer version replaces it
    UNIQUE (plan_code, version)
);
-- At most one current version per plan.
CREATE UNIQUE INDEX billing_plan_current ON public.billing_plan_versions (plan_code) WHERE retired_at IS NULL;

CREATE TABLE public.billing_subscriptions (
    tenant_id bigint PRIMARY KEY,
    plan_version_id bigint NOT NULL REFERENCES public.billing_plan_versions (id),
    billing_interval text NOT NULL DEFAULT 'month' CHECK (billing_interval IN ('month', 'year')),
    status text NOT NULL CHECK (status IN ('trial', 'active', 'past_due', 'suspended', 'cancelled')),
    period_start timestamptz NOT NULL,
    period_end timestamptz NOT NULL CHECK (period_end > period_start),
    trial_end timestamptz,
    cancel_at_period_end boolean NOT NULL DEFAULT false,
    pending_plan_version_id bigint REFERENCES public.billing_plan_versions (id),  -- downgrade at period end
    provider text NOT NULL DEFAULT 'manual',
    provider_ref text NOT NULL DEFAULT '',
    past_due_since timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX billing_subscriptions_period_end ON public.billing_subscriptions (period_end)
    WHERE status <> 'cancelled';
CREATE INDEX billing_subscriptions_past_due ON public.billing_subscriptions (past_due_since)
    WHERE status IN ('past_due', 'suspended');

-- The free plan ships; the operator adds others (admin console, `smsgw plans`).
INSERT INTO public.billing_plan_versions
    (plan_code, version, name, currency, monthly_price, yearly_price, included_segments,
     max_devices, max_members, api_per_minute, overage_per_1000, trial_days, sort_order)
VALUES ('free', 1, 'Free', 'EUR', 0, 0, 200, 1, 3, 60, NULL, 0, 0);

REVOKE ALL ON public.billing_plan_versions, public.billing_subscriptions FROM {{app_role}};
GRANT SELECT, INSERT, UPDATE ON public.billing_plan_versions, public.billing_subscriptions TO {{app_role}};
GRANT USAGE ON SEQUENCE public.billing_plan_versions_id_seq TO {{app_role}};
