-- Sending paused for a whole workspace (issue 15): by its Customer ("freeze sending", with the
-- reason they gave) and, implied by deletion_scheduled_at, while it waits to be deleted. The
-- kernel only carries the state in the cached tenant info; the messaging addon refuses new sends
-- and hands nothing to phones while it is set.
ALTER TABLE public.tenant ADD COLUMN sending_paused_at timestamptz;
ALTER TABLE public.tenant ADD COLUMN sending_paused_reason text NOT NULL DEFAULT '';

-- Subdomains no sign-up may take until a date: a deleted workspace's, for a while, so that its
-- old links, mails and API clients cannot reach a stranger who signs up with the same name.
CREATE TABLE public.reserved_slug (
    slug text PRIMARY KEY,
    reserved_until timestamptz NOT NULL,
    reason text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.reserved_slug TO {{app_role}};
