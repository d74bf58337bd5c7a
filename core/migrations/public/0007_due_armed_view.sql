-- What a workspace has armed, readable by the workspace itself (its own rows only: the view takes
-- the workspace from the role the transaction runs as). A statement that arms as part of its own
-- work (a phone's claim) looks here first and calls the arming function only when nothing early
-- enough is armed yet: the common case then costs an index lookup, not a SECURITY DEFINER call.
-- Owned by the maintenance role (which may read both tables); tenants only SELECT the view.
CREATE VIEW {{role_prefix}}_due.armed WITH (security_barrier) AS
    SELECT w.job, w.due_at
      FROM public.due_work w
     WHERE w.tenant_id = (SELECT t.id FROM public.tenant t WHERE t.role_name = current_user);
ALTER VIEW {{role_prefix}}_due.armed OWNER TO {{maintenance_role}};
REVOKE ALL ON {{role_prefix}}_due.armed FROM PUBLIC;
GRANT SELECT ON {{role_prefix}}_due.armed TO {{tenants_role}};
