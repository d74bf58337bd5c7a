-- Privacy requests (GDPR art. 12: answered within a month): every export, erasure, rectification
-- by support, restriction, objection and "contact us" is a row with its subject, state and due
-- date. Self-service requests complete by themselves; the rest wait in the platform admin's queue.
CREATE TABLE public.privacy_request (
    id bigserial PRIMARY KEY,
    tenant_id bigint,  -- no foreign key: the record of an erasure outlives the workspace it erased
    tenant_slug text NOT NULL DEFAULT '',
    kind text NOT NULL CHECK (kind IN ('export', 'erasure', 'rectification', 'restriction', 'objection', 'contact')),
    subject text NOT NULL,  -- "tenant", an actor ("user:<id>"), or an e-mail address (contact by mail)
    requested_by text NOT NULL DEFAULT '',  -- the actor who asked (core.events), or the address
    self_service boolean NOT NULL DEFAULT false,
    state text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'in_progress', 'done', 'refused', 'cancelled')),
    details jsonb NOT NULL DEFAULT '{}',
    outcome text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    due_at timestamptz NOT NULL DEFAULT now() + interval '30 days',
    completed_at timestamptz
);
CREATE INDEX privacy_request_open_due ON public.privacy_request (due_at) WHERE state IN ('open', 'in_progress');
CREATE INDEX privacy_request_tenant ON public.privacy_request (tenant_id, created_at DESC);

REVOKE ALL ON public.privacy_request FROM {{app_role}};
GRANT SELECT, INSERT, UPDATE ON public.privacy_request TO {{app_role}};
GRANT USAGE ON SEQUENCE public.privacy_request_id_seq TO {{app_role}};
