-- The audit trail. Append-only for the serving role: it may INSERT and SELECT,
-- never UPDATE, DELETE or TRUNCATE. Rows past the 90-day retention are purged
-- only through a SECURITY DEFINER function owned by the maintenance role.
CREATE TABLE public.audit_event (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    tenant_id bigint,
    tenant_slug text,
    actor text NOT NULL DEFAULT '',
    actor_name text NOT NULL DEFAULT '',
    action text NOT NULL,
    target text NOT NULL DEFAULT '',
    ip text NOT NULL DEFAULT '',
    user_agent text NOT NULL DEFAULT '',
    reason text,
    details jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_event_tenant_at ON public.audit_event (tenant_id, at DESC);
CREATE INDEX audit_event_at ON public.audit_event (at);

REVOKE ALL ON public.audit_event FROM {{app_role}};
GRANT SELECT, INSERT ON public.audit_event TO {{app_role}};
GRANT SELECT, DELETE ON public.audit_event TO {{maintenance_role}};

CREATE FUNCTION public.{{role_prefix}}_purge_audit() RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog AS $fn$
    WITH gone AS (DELETE FROM public.audit_event WHERE at < now() - interval '90 days' RETURNING 1)
    SELECT count(*) FROM gone
$fn$;
ALTER FUNCTION public.{{role_prefix}}_purge_audit() OWNER TO {{maintenance_role}};
REVOKE ALL ON FUNCTION public.{{role_prefix}}_purge_audit() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.{{role_prefix}}_purge_audit() TO {{app_role}};
