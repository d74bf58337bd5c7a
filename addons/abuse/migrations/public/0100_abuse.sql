-- Abuse and fraud monitoring (addons/abuse, issue 20), the platform-wide part.
--
-- The operator's rules: per rule an action (record, notify, hold, suspend), a severity and its
-- parameters; per workspace overrides (a false positive tunes a rule for that workspace); the
-- acceptable-use patterns (keyword, URL domain, RE2 regular expression). Every change NOTIFYs
-- smsgw_abuse_rules at commit, so every process reloads its copy (the send path reads memory only).
CREATE TABLE public.abuse_rules (
    rule text PRIMARY KEY CHECK (rule ~ '^[a-z][a-z0-9_]{0,49}$'),
    action text NOT NULL CHECK (action IN ('off', 'record', 'notify', 'hold', 'suspend')),
    severity smallint NOT NULL CHECK (severity BETWEEN 1 AND 3),
    params jsonb NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE public.abuse_rule_overrides (
    tenant_id bigint NOT NULL REFERENCES public.tenant (id) ON DELETE CASCADE,
    rule text NOT NULL,
    action text CHECK (action IN ('off', 'record', 'notify', 'hold', 'suspend')),
    params jsonb NOT NULL DEFAULT '{}',
    reason text NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, rule)
);
CREATE TABLE public.abuse_aup_patterns (
    id bigserial PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('keyword', 'domain', 'regex')),
    pattern text NOT NULL CHECK (length(pattern) BETWEEN 1 AND 500),
    note text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.abuse_rules, public.abuse_rule_overrides, public.abuse_aup_patterns
    TO {{app_role}};
GRANT USAGE ON SEQUENCE public.abuse_aup_patterns_id_seq TO {{app_role}};

CREATE FUNCTION public.abuse_rules_changed() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM pg_notify('smsgw_abuse_rules', TG_TABLE_NAME);
    RETURN NULL;
END
$fn$;
CREATE TRIGGER abuse_rules_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON public.abuse_rules
    FOR EACH STATEMENT EXECUTE FUNCTION public.abuse_rules_changed();
CREATE TRIGGER abuse_rule_overrides_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON public.abuse_rule_overrides FOR EACH STATEMENT EXECUTE FUNCTION public.abuse_rules_changed();
CREATE TRIGGER abuse_aup_patterns_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON public.abuse_aup_patterns FOR EACH STATEMENT EXECUTE FUNCTION public.abuse_rules_changed();

-- The platform admins' review queue: one row per alert of any workspace (the alert itself, with
-- its evidence, lives in the workspace's schema). Tenant transactions add their rows only through
-- the SECURITY DEFINER function below, which takes the workspace from the transaction's role (as
-- core/migrations/public/0006_due_work.sql does): a workspace cannot name another one.
CREATE TABLE public.abuse_queue (
    tenant_id bigint NOT NULL REFERENCES public.tenant (id) ON DELETE CASCADE,
    alert_id bigint NOT NULL,
    rule text NOT NULL,
    severity smallint NOT NULL,
    summary text NOT NULL DEFAULT '',
    -- The platform's own observation (numbers, prefixes, counts, the burst per minute), copied here
    -- so that reviewing an alert needs no access to the workspace's data; acting on it does.
    evidence jsonb NOT NULL DEFAULT '{}',
    status text NOT NULL DEFAULT 'open',
    resolution text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, alert_id)
);
CREATE INDEX abuse_queue_open ON public.abuse_queue (severity DESC, created_at) WHERE status = 'open';
GRANT SELECT, UPDATE ON public.abuse_queue TO {{app_role}};

CREATE SCHEMA {{role_prefix}}_abuse AUTHORIZATION {{maintenance_role}};
REVOKE ALL ON SCHEMA {{role_prefix}}_abuse FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON public.abuse_queue TO {{maintenance_role}};

CREATE FUNCTION {{role_prefix}}_abuse.enqueue(p_alert bigint, p_rule text, p_severity smallint, p_summary text,
                                              p_status text, p_evidence jsonb, p_resolution text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $fn$
DECLARE
    t bigint;
BEGIN
    SELECT id INTO t FROM public.tenant WHERE role_name = current_setting('role');
    IF t IS NULL THEN
        RAISE EXCEPTION 'abuse alerts are queued from inside a tenant transaction' USING ERRCODE = '42501';
    END IF;
    INSERT INTO public.abuse_queue AS q (tenant_id, alert_id, rule, severity, summary, status, evidence, resolution)
        VALUES (t, p_alert, left(p_rule, 50), p_severity, left(p_summary, 500), p_status, coalesce(p_evidence, '{}'),
                left(coalesce(p_resolution, ''), 600))
        ON CONFLICT (tenant_id, alert_id) DO UPDATE
        SET summary = CASE WHEN p_summary = '' THEN q.summary ELSE excluded.summary END, status = excluded.status,
            evidence = CASE WHEN p_evidence IS NULL THEN q.evidence ELSE excluded.evidence END,
            resolution = excluded.resolution, updated_at = now();
    PERFORM pg_notify('smsgw_abuse_queue', t::text);
END
$fn$;
ALTER FUNCTION {{role_prefix}}_abuse.enqueue(bigint, text, smallint, text, text, jsonb, text) OWNER TO {{maintenance_role}};
REVOKE ALL ON FUNCTION {{role_prefix}}_abuse.enqueue(bigint, text, smallint, text, text, jsonb, text) FROM PUBLIC;
GRANT USAGE ON SCHEMA {{role_prefix}}_abuse TO {{tenants_role}};
GRANT EXECUTE ON FUNCTION {{role_prefix}}_abuse.enqueue(bigint, text, smallint, text, text, jsonb, text) TO {{tenants_role}};
