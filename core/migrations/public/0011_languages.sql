-- A workspace's default language (issue 24, item 5): its pages and the mails to its members are in it,
-- unless a person chose their own. '' means the platform's default (SMSGW_DEFAULT_LANGUAGE).
ALTER TABLE public.tenant ADD COLUMN language text NOT NULL DEFAULT '';
