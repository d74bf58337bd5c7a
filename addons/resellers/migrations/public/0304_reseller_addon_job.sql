-- Enabling or disabling an addon for many workspaces, recorded as a job: one row per workspace,
-- updated as each is done, so the console can show the progress while it happens (and the result
-- after, to a browser without JavaScript).
CREATE TABLE public.reseller_addon_job (
    id bigserial PRIMARY KEY,
    reseller_id bigint NOT NULL REFERENCES public.reseller (id) ON DELETE CASCADE,
    addon text NOT NULL CHECK (addon ~ '^[a-z][a-z0-9_]{0,39}$'),
    enabled boolean NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX reseller_addon_job_reseller ON public.reseller_addon_job (reseller_id, created_at);

CREATE TABLE public.reseller_addon_job_item (
    job_id bigint NOT NULL REFERENCES public.reseller_addon_job (id) ON DELETE CASCADE,
    position integer NOT NULL CHECK (position > 0),
    slug text NOT NULL,
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
    error text NOT NULL DEFAULT '' CHECK (length(error) <= 1000),
    PRIMARY KEY (job_id, position)
);

REVOKE ALL ON public.reseller_addon_job, public.reseller_addon_job_item FROM {{app_role}};
GRANT SELECT, INSERT, UPDATE ON public.reseller_addon_job, public.reseller_addon_job_item TO {{app_role}};
GRANT USAGE ON SEQUENCE public.reseller_addon_job_id_seq TO {{app_role}};
