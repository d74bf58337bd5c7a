-- Each member's time zone (issue 22, item 9): times on pages are shown in it, with UTC on hover.
-- An IANA name ("Europe/Berlin"); empty: UTC.
ALTER TABLE users ADD COLUMN time_zone text NOT NULL DEFAULT '';
