-- A reseller's own sign-up page (partners.<base-domain>/<reseller>/signup): off until the reseller
-- opens it; the retail plan its new customers start on.
ALTER TABLE public.reseller
    ADD COLUMN signup_enabled boolean NOT NULL DEFAULT false,
    ADD COLUMN signup_plan_id bigint REFERENCES public.reseller_plan (id) ON DELETE SET NULL;
