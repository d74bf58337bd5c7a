-- First-party analytics of the public pages (base domain), written only for browsers whose consent
-- cookie says "analytics": a row per page view, in the request (exact counts). visitor is the random
-- id of the analytics cookie (set after consent, deleted on withdrawal); no IP address, no user
-- agent, and of a referrer only its host (another site) or its path (our own site).
CREATE TABLE public.analytics_view (
    id bigserial PRIMARY KEY,
    viewed_at timestamptz NOT NULL DEFAULT now(),
    path text NOT NULL,
    referrer_host text NOT NULL DEFAULT '',
    referrer_path text NOT NULL DEFAULT '',
    visitor text NOT NULL
);
CREATE INDEX analytics_view_time ON public.analytics_view (viewed_at);
CREATE INDEX analytics_view_visitor ON public.analytics_view (visitor);

-- A visitor (analytics cookie) who signed up: the conversion of the sign-up page.
CREATE TABLE public.analytics_signup (
    id bigserial PRIMARY KEY,
    visitor text NOT NULL,
    signed_up_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX analytics_signup_visitor ON public.analytics_signup (visitor);

REVOKE ALL ON public.analytics_view, public.analytics_signup FROM {{app_role}};
GRANT SELECT, INSERT, DELETE ON public.analytics_view, public.analytics_signup TO {{app_role}};
GRANT USAGE ON SEQUENCE public.analytics_view_id_seq, public.analytics_signup_id_seq TO {{app_role}};
