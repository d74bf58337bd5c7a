-- When background work last ran, written by whoever ran it: the worker's heartbeat ('worker')
-- and the web processes' stand-in for a late worker ('standin', the end of the window it did).
-- (0005: 0004 is taken by another branch's signup policy.)
CREATE TABLE public.periodic_mark (
    name text PRIMARY KEY,
    at timestamptz NOT NULL,
    by text NOT NULL DEFAULT ''
);
