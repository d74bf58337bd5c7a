-- Sign-in history (Account -> Security): each password sign-in to the dashboard or the token API,
-- and each failed one for a member's own address, kept 90 days (addons/privacy/signins.py).
-- No User-Agent text: only the browser family and device type read from it, from fixed lists.
-- The address is exact for 7 days, then cut to its network (/24, IPv6 /48): masklen says which.
CREATE TABLE privacy_signins (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    at timestamptz NOT NULL DEFAULT now(),
    succeeded boolean NOT NULL,
    ip inet,
    browser text NOT NULL CHECK (browser ~ '^[a-z]{1,16}$'),
    device text NOT NULL CHECK (device IN ('desktop', 'phone', 'tablet', 'other', 'unknown'))
);
CREATE INDEX privacy_signins_user_at ON privacy_signins (user_id, at DESC, id DESC);
CREATE INDEX privacy_signins_at ON privacy_signins (at);
