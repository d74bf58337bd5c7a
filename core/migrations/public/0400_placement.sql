-- Workspaces on several PostgreSQL servers (core/placement.py, issue 21).
-- status 'moving': `smsgw tenant move` is copying the workspace to another server; its requests
-- answer 503 with Retry-After until the short write pause ends.
-- database_alias: the server it lives on ('default' or an alias of SMSGW_DATABASES); placement
-- counts workspaces per alias.
ALTER TABLE public.tenant DROP CONSTRAINT tenant_status_check;
ALTER TABLE public.tenant ADD CONSTRAINT tenant_status_check
    CHECK (status IN ('active', 'suspended', 'pending', 'moving'));
ALTER TABLE public.tenant ADD CONSTRAINT tenant_database_alias_check
    CHECK (database_alias ~ '^[a-z][a-z0-9_]{0,30}$');
CREATE INDEX tenant_database_alias ON public.tenant (database_alias);
