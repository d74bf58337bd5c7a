-- The platform catalogue: tenants, their enabled addons and migration ledger.
CREATE TABLE public.tenant (
    id bigserial PRIMARY KEY,
    slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$'),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    plan text NOT NULL DEFAULT 'free',
    schema_name text NOT NULL UNIQUE,
    role_name text NOT NULL UNIQUE,
    database_alias text NOT NULL DEFAULT 'default',
    theme text,
    default_region text NOT NULL DEFAULT 'US',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    suspended_at timestamptz,
    deletion_scheduled_at timestamptz
);

CREATE TABLE public.tenant_addon (
    tenant_id bigint NOT NULL REFERENCES public.tenant (id) ON DELETE CASCADE,
    addon text NOT NULL,
    enabled boolean NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, addon)
);

CREATE TABLE public.tenant_migration (
    tenant_id bigint NOT NULL REFERENCES public.tenant (id) ON DELETE CASCADE,
    addon text NOT NULL,
    version integer NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, addon, version)
);
