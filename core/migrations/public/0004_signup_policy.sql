-- Self-service sign-up policy (issue 13, finding 4).
-- verified_at: when the owner confirmed their address; until then the workspace may not send,
-- invite or mint API tokens, and it is removed after SMSGW_UNVERIFIED_TTL_DAYS. Workspaces made
-- before this migration (by the operator or the CLI) count as verified.
-- status 'pending': created under SMSGW_SIGNUP=approval, waiting for an Admin.
ALTER TABLE public.tenant ADD COLUMN verified_at timestamptz;
ALTER TABLE public.tenant ADD COLUMN approved_at timestamptz;
UPDATE public.tenant SET verified_at = created_at;
ALTER TABLE public.tenant DROP CONSTRAINT tenant_status_check;
ALTER TABLE public.tenant ADD CONSTRAINT tenant_status_check
    CHECK (status IN ('active', 'suspended', 'pending'));
CREATE INDEX tenant_unverified ON public.tenant (created_at) WHERE verified_at IS NULL;

-- Workspace creations (and verification-mail resends) counted per client address and in
-- total over the last hour; a table, not process memory, so every web process shares the count.
CREATE TABLE public.signup_attempt (
    id bigserial PRIMARY KEY,
    key text NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX signup_attempt_key_at ON public.signup_attempt (key, at);
CREATE INDEX signup_attempt_at ON public.signup_attempt (at);
