-- Erasing acceptances of the privacy policy, which the serving role may only add (they are proof):
-- for a member who deletes their account, the record stays without who they were (subject, address,
-- browser); for a workspace erased whole, its acceptances go with it (nobody is left to prove to).
CREATE FUNCTION public.{{role_prefix}}_pseudonymise_privacy_policy_acceptance(
    p_tenant bigint, p_actor text, p_addresses text[], p_pseudonyms text[], p_salt text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $fn$
DECLARE
    n bigint;
BEGIN
    IF p_actor IS NULL THEN
        DELETE FROM public.privacy_policy_acceptance a WHERE a.tenant_id = p_tenant;
    ELSE
        UPDATE public.privacy_policy_acceptance a
           SET subject = 'person-' || left(md5(p_salt || a.subject), 10),
               ip = CASE WHEN a.ip = '' THEN '' ELSE 'ip-' || left(md5(p_salt || a.ip), 12) END,
               user_agent = ''
         WHERE a.tenant_id = p_tenant AND a.subject = p_actor;
    END IF;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$fn$;
ALTER FUNCTION public.{{role_prefix}}_pseudonymise_privacy_policy_acceptance(bigint, text, text[], text[], text)
    OWNER TO {{maintenance_role}};
REVOKE ALL ON FUNCTION public.{{role_prefix}}_pseudonymise_privacy_policy_acceptance(bigint, text, text[], text[], text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.{{role_prefix}}_pseudonymise_privacy_policy_acceptance(bigint, text, text[], text[], text)
    TO {{app_role}};
GRANT SELECT, UPDATE (subject, ip, user_agent), DELETE ON public.privacy_policy_acceptance TO {{maintenance_role}};
