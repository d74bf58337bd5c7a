-- What the due-work repair pass saw when it last checked each workspace (core/due.py): a
-- fingerprint of the workspace's write counters (pg_stat_user_tables, summed over its schema),
-- its armed rows and the jobs it has. A workspace whose fingerprint is unchanged has written
-- nothing and had nothing run or armed since it was checked: the pass skips it without entering
-- it, so an idle workspace costs the safety net no transaction and no catalogue cache either.
CREATE TABLE public.due_repair_seen (
    tenant_id bigint PRIMARY KEY REFERENCES public.tenant (id) ON DELETE CASCADE,
    fingerprint text NOT NULL,
    checked_at timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.due_repair_seen TO {{maintenance_role}};
