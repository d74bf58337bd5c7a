-- Data exports (GDPR art. 15 access, art. 20 portability): one row per export with its state and
-- progress, the file itself in chunks beside it. In PostgreSQL, not on a disk: the worker that
-- builds it and the web process that serves it may run on different machines, and a worker that
-- dies mid-build leaves a row the sweep hands to another worker (lease_until).
CREATE TABLE public.privacy_export (
    id bigserial PRIMARY KEY,
    tenant_id bigint NOT NULL REFERENCES public.tenant (id) ON DELETE CASCADE,
    subject text NOT NULL,  -- "tenant" (the whole workspace) or an actor ("user:<id>")
    requested_by text NOT NULL,  -- the actor who asked (core.events)
    bound_to text NOT NULL,  -- the credential the download is bound to ("session:<id>", "api_token:<id>", "jwt:<family>")
    request_id bigint,  -- its public.privacy_request
    state text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'building', 'ready', 'failed', 'expired')),
    progress smallint NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    rows_done bigint NOT NULL DEFAULT 0,
    size_bytes bigint,
    error text NOT NULL DEFAULT '',
    attempts integer NOT NULL DEFAULT 0,
    lease_until timestamptz,  -- while building: the worker renews it; past it, the build is taken over
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    expires_at timestamptz,  -- ready + 24 h: then the file is deleted
    downloads integer NOT NULL DEFAULT 0,
    last_downloaded_at timestamptz
);
CREATE INDEX privacy_export_tenant ON public.privacy_export (tenant_id, created_at DESC);
CREATE INDEX privacy_export_live ON public.privacy_export (state) WHERE state IN ('queued', 'building', 'ready');

CREATE TABLE public.privacy_export_chunk (
    export_id bigint NOT NULL REFERENCES public.privacy_export (id) ON DELETE CASCADE,
    seq integer NOT NULL,
    tenant_id bigint NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (export_id, seq)
);

REVOKE ALL ON public.privacy_export, public.privacy_export_chunk FROM {{app_role}};
GRANT SELECT, INSERT, UPDATE, DELETE ON public.privacy_export, public.privacy_export_chunk TO {{app_role}};
GRANT USAGE ON SEQUENCE public.privacy_export_id_seq TO {{app_role}};
