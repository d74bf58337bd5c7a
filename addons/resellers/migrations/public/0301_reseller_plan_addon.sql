-- Addons that come with a retail plan: a workspace put on the plan gets them enabled (the same
-- enable path as `smsgw addons enable`), and loses them when it moves off the plan.
CREATE TABLE public.reseller_plan_addon (
    plan_id bigint NOT NULL REFERENCES public.reseller_plan (id) ON DELETE CASCADE,
    addon text NOT NULL CHECK (addon ~ '^[a-z][a-z0-9_]{0,39}$'),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (plan_id, addon)
);

REVOKE ALL ON public.reseller_plan_addon FROM {{app_role}};
GRANT SELECT, INSERT, DELETE ON public.reseller_plan_addon TO {{app_role}};
