-- Rectification (issue 15, item 4): the company's contact details and billing address, which its
-- Customer edits on the Privacy page (public.tenant keeps the name). Gone with the workspace.
CREATE TABLE public.tenant_contact (
    tenant_id bigint PRIMARY KEY REFERENCES public.tenant (id) ON DELETE CASCADE,
    contact_name text NOT NULL DEFAULT '',
    contact_email text NOT NULL DEFAULT '',
    contact_phone text NOT NULL DEFAULT '',
    billing_address text NOT NULL DEFAULT '',
    vat_id text NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.tenant_contact TO {{app_role}};

-- Erasure (issue 15, item 3): the audit trail is append-only for the serving role, so erasing a
-- workspace or a member pseudonymises it through this function, owned by the maintenance role
-- (like the purge), never by editing it otherwise. For the rows of workspace p_tenant: each of
-- p_addresses becomes its p_pseudonyms entry wherever it appears (any case); the IP address and
-- user agent and actor name of the rows p_actor wrote (every row when p_actor is NULL) become
-- salted hashes and nothing; with p_actor NULL, every e-mail address and phone number left in
-- targets and details is replaced too. p_salt is random per erasure and never stored: the pseudonyms link rows to one another,
-- never back to a person.
CREATE FUNCTION public.{{role_prefix}}_pseudonymise_audit_event(p_tenant bigint, p_actor text, p_addresses text[],
                                                                p_pseudonyms text[], p_salt text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $fn$
DECLARE
    n bigint;
    pat text;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_addresses, 1), 0) LOOP
        pat := regexp_replace(p_addresses[i], '([^A-Za-z0-9])', '\\\1', 'g');
        UPDATE public.audit_event e
           SET actor_name = regexp_replace(e.actor_name, pat, p_pseudonyms[i], 'gi'),
               target = regexp_replace(e.target, pat, p_pseudonyms[i], 'gi'),
               details = regexp_replace(e.details::text, pat, p_pseudonyms[i], 'gi')::jsonb
         WHERE e.tenant_id = p_tenant
           AND (e.actor_name ~* pat OR e.target ~* pat OR e.details::text ~* pat);
    END LOOP;
    UPDATE public.audit_event e
       SET ip = CASE WHEN e.ip = '' OR e.ip LIKE 'ip-%' THEN e.ip ELSE 'ip-' || left(md5(p_salt || e.ip), 12) END,
           user_agent = '',
           actor_name = CASE WHEN e.actor_name = '' THEN '' ELSE 'person-' || left(md5(p_salt || e.actor), 10) END
     WHERE e.tenant_id = p_tenant AND (p_actor IS NULL OR e.actor = p_actor);
    GET DIAGNOSTICS n = ROW_COUNT;
    IF p_actor IS NULL THEN
        UPDATE public.audit_event e
           SET target = regexp_replace(regexp_replace(e.target, '[^\s@"<>(),;:]+@[^\s@"<>(),;:]+', 'erased', 'g'),
                                       '\+[0-9]{7,15}', 'erased-number', 'g'),
               details = regexp_replace(regexp_replace(e.details::text, '[^\s@"<>(),;:]+@[^\s@"<>(),;:]+', 'erased', 'g'),
                                        '\+[0-9]{7,15}', 'erased-number', 'g')::jsonb
         WHERE e.tenant_id = p_tenant;
    END IF;
    RETURN n;
END
$fn$;
ALTER FUNCTION public.{{role_prefix}}_pseudonymise_audit_event(bigint, text, text[], text[], text) OWNER TO {{maintenance_role}};
REVOKE ALL ON FUNCTION public.{{role_prefix}}_pseudonymise_audit_event(bigint, text, text[], text[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.{{role_prefix}}_pseudonymise_audit_event(bigint, text, text[], text[], text) TO {{app_role}};
DO $do$
BEGIN
    IF to_regclass('public.audit_event') IS NOT NULL THEN
        GRANT UPDATE (actor_name, target, ip, user_agent, details) ON public.audit_event TO {{maintenance_role}};
    END IF;
END
$do$;
