-- Quotas (addons/billing/quotas.py).
--
-- The usage warnings sent, once per workspace, period and level (80 or 100 % of the included
-- segments): the row is written in the transaction that sends the mail, so a restart never sends
-- one twice (a crash between the mail leaving and the commit can send it again: at least once).
CREATE TABLE public.billing_quota_notices (
    tenant_id bigint NOT NULL,
    period_start timestamptz NOT NULL,
    level integer NOT NULL CHECK (level IN (80, 100)),
    used bigint NOT NULL CHECK (used >= 0),
    included bigint NOT NULL CHECK (included >= 0),
    sent_to integer NOT NULL DEFAULT 0 CHECK (sent_to >= 0),  -- how many owners/admins were mailed
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, period_start, level)
);

REVOKE ALL ON public.billing_quota_notices FROM {{app_role}};
GRANT SELECT, INSERT, DELETE ON public.billing_quota_notices TO {{app_role}};

-- Every web process caches each workspace's plan and subscription for the submit path; any change
-- to either (whoever makes it: the Billing page, the admin console, the CLI, plain SQL) tells every
-- process at commit, so a cached limit is never older than the NOTIFY's delivery.
CREATE FUNCTION public.billing_quota_changed() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_TABLE_NAME = 'billing_subscriptions' THEN
        PERFORM pg_notify('smsgw_billing_changed', coalesce(NEW.tenant_id, OLD.tenant_id)::text);
    ELSE
        PERFORM pg_notify('smsgw_billing_changed', '*');  -- a plan version: every workspace on it
    END IF;
    RETURN NULL;
END
$fn$;
CREATE TRIGGER billing_subscriptions_changed AFTER INSERT OR UPDATE OR DELETE ON public.billing_subscriptions
    FOR EACH ROW EXECUTE FUNCTION public.billing_quota_changed();
CREATE TRIGGER billing_plan_versions_changed AFTER INSERT OR UPDATE OR DELETE ON public.billing_plan_versions
    FOR EACH STATEMENT EXECUTE FUNCTION public.billing_quota_changed();
