-- Due work (core/due.py): when each workspace next has something to do for each job. Tenant
-- transactions write their own rows only through the SECURITY DEFINER functions below (schema
-- <prefix>_due), which
-- take the workspace from the role the transaction runs as: a tenant cannot name another one.
-- The worker's scheduler (the serving role) reads the rows, runs the due ones and re-arms them.
CREATE TABLE public.due_work (
    tenant_id bigint NOT NULL REFERENCES public.tenant (id) ON DELETE CASCADE,
    job text NOT NULL CHECK (job ~ '^[a-z][a-z0-9_.]{0,99}$'),
    due_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, job)
);
CREATE INDEX due_work_due ON public.due_work (due_at);

GRANT SELECT ON public.tenant TO {{maintenance_role}};

-- The functions live in a schema of their own: tenant roles get USAGE on it, and still none on
-- public (a tenant's query for a catalogue table stays "permission denied for schema public").
CREATE SCHEMA {{role_prefix}}_due AUTHORIZATION {{maintenance_role}};
REVOKE ALL ON SCHEMA {{role_prefix}}_due FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.due_work TO {{maintenance_role}};

-- The workspace of the calling tenant transaction (from its role: it cannot name another one),
-- with p_job's advisory lock for it taken shared to the end of the transaction. Called by the
-- functions below as their owner; nobody else may call it.
CREATE FUNCTION {{role_prefix}}_due.caller(p_job text) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog AS $fn$
DECLARE
    t bigint;
BEGIN
    SELECT id INTO t FROM public.tenant WHERE role_name = current_setting('role');
    IF t IS NULL THEN
        RAISE EXCEPTION 'due work is armed or disarmed from inside a tenant transaction' USING ERRCODE = '42501';
    END IF;
    PERFORM pg_advisory_xact_lock_shared(hashtext(p_job), (t % 2147483647)::int);
    RETURN t;
END
$fn$;
ALTER FUNCTION {{role_prefix}}_due.caller(text) OWNER TO {{maintenance_role}};
REVOKE ALL ON FUNCTION {{role_prefix}}_due.caller(text) FROM PUBLIC;

-- Arm: the workspace has work for p_job at p_due. Keeps the earlier of the two times, writes
-- nothing when the row is already as early (the common case), and wakes the schedulers
-- (NOTIFY smsgw_due) only when it made the row earlier. The shared advisory lock, held to the
-- end of the transaction, keeps a run of the job (which takes it exclusively) from reading the
-- workspace's work before this transaction's work is committed.
CREATE FUNCTION {{role_prefix}}_due.arm(p_job text, p_due timestamptz) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $fn$
DECLARE
    t bigint := {{role_prefix}}_due.caller(p_job);
    cur timestamptz;
BEGIN
    SELECT due_at INTO cur FROM public.due_work WHERE tenant_id = t AND job = p_job;
    IF cur IS NOT NULL AND cur <= p_due THEN
        RETURN;
    END IF;
    INSERT INTO public.due_work AS d (tenant_id, job, due_at) VALUES (t, p_job, p_due)
        ON CONFLICT (tenant_id, job) DO UPDATE SET due_at = least(d.due_at, excluded.due_at);
    PERFORM pg_notify('smsgw_due', p_job);
END
$fn$;

-- Disarm: the caller knows the workspace has nothing left for p_job (a run of the job clears
-- its row itself when it finds nothing due; this is for work withdrawn before its time).
CREATE FUNCTION {{role_prefix}}_due.disarm(p_job text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $fn$
DECLARE
    t bigint := {{role_prefix}}_due.caller(p_job);
BEGIN
    DELETE FROM public.due_work WHERE tenant_id = t AND job = p_job;
END
$fn$;

ALTER FUNCTION {{role_prefix}}_due.arm(text, timestamptz) OWNER TO {{maintenance_role}};
ALTER FUNCTION {{role_prefix}}_due.disarm(text) OWNER TO {{maintenance_role}};
REVOKE ALL ON FUNCTION {{role_prefix}}_due.arm(text, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION {{role_prefix}}_due.disarm(text) FROM PUBLIC;
GRANT USAGE ON SCHEMA {{role_prefix}}_due TO {{tenants_role}};
GRANT EXECUTE ON FUNCTION {{role_prefix}}_due.arm(text, timestamptz) TO {{tenants_role}};
GRANT EXECUTE ON FUNCTION {{role_prefix}}_due.disarm(text) TO {{tenants_role}};

-- Workspaces created before this migration join the tenants role.
DO $do$
DECLARE
    r text;
BEGIN
    FOR r IN SELECT role_name FROM public.tenant LOOP
        EXECUTE format('GRANT %I TO %I WITH INHERIT TRUE, SET FALSE', '{{tenants_role}}', r);
    END LOOP;
END
$do$;
