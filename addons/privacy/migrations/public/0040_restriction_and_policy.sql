-- Restriction and objection (GDPR art. 18 and 21): a person objects to direct marketing or to
-- profiling, or asks to restrict processing while a complaint about accuracy is checked. A row is
-- in force until withdrawn (by the person, or by the platform admin when the check is done); the
-- features it concerns ask privacy.restriction.excluded() and honour it at once.
CREATE TABLE public.privacy_restriction (
    id bigserial PRIMARY KEY,
    tenant_id bigint NOT NULL,
    tenant_slug text NOT NULL DEFAULT '',
    subject text NOT NULL,  -- the person, as an actor ("user:<id>")
    email text NOT NULL DEFAULT '',  -- their address when recorded: what marketing mail is checked against
    purpose text NOT NULL CHECK (purpose IN ('marketing', 'profiling', 'restriction')),
    reason text NOT NULL DEFAULT '',
    request_id bigint,  -- the privacy_request that records it
    created_at timestamptz NOT NULL DEFAULT now(),
    withdrawn_at timestamptz,
    withdrawn_by text NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX privacy_restriction_in_force
    ON public.privacy_restriction (tenant_id, subject, purpose) WHERE withdrawn_at IS NULL;
CREATE INDEX privacy_restriction_email ON public.privacy_restriction (lower(email)) WHERE withdrawn_at IS NULL;

-- Which version of the privacy policy each person accepted (on the sign-up form) or acknowledged
-- (after it changed): the proof, with time and client address.
CREATE TABLE public.privacy_policy_acceptance (
    id bigserial PRIMARY KEY,
    tenant_id bigint NOT NULL,
    tenant_slug text NOT NULL DEFAULT '',
    subject text NOT NULL,  -- "user:<id>"
    version text NOT NULL,
    how text NOT NULL CHECK (how IN ('signup', 'acknowledged')),
    accepted_at timestamptz NOT NULL DEFAULT now(),
    ip text NOT NULL DEFAULT '',
    user_agent text NOT NULL DEFAULT ''
);
CREATE INDEX privacy_policy_acceptance_subject
    ON public.privacy_policy_acceptance (tenant_id, subject, accepted_at DESC);

REVOKE ALL ON public.privacy_restriction, public.privacy_policy_acceptance FROM {{app_role}};
GRANT SELECT, INSERT, UPDATE ON public.privacy_restriction TO {{app_role}};
GRANT SELECT, INSERT ON public.privacy_policy_acceptance TO {{app_role}};
GRANT USAGE ON SEQUENCE public.privacy_restriction_id_seq, public.privacy_policy_acceptance_id_seq TO {{app_role}};
