-- A refresh-token family remembers what it was derived from, so that what it mints never
-- carries more than its source and dies with it (issue 13, finding 1):
--   * api_token_id: minted from an API token; its access tokens act as that token, not as
--     the person who created it, and deleting the token deletes the family;
--   * scope: the permissions its access tokens carry (space-separated; NULL: the user's role);
--   * parent_family_id: minted with an access token of another family; revoking that family
--     revokes this one too.
ALTER TABLE refresh_tokens
    ALTER COLUMN user_id DROP NOT NULL,
    ADD COLUMN api_token_id bigint REFERENCES api_tokens (id) ON DELETE CASCADE,
    ADD COLUMN scope text,
    ADD COLUMN parent_family_id uuid,
    ADD CONSTRAINT refresh_tokens_one_holder CHECK ((user_id IS NULL) <> (api_token_id IS NULL));
CREATE INDEX refresh_tokens_api_token ON refresh_tokens (api_token_id) WHERE api_token_id IS NOT NULL;
CREATE INDEX refresh_tokens_parent ON refresh_tokens (parent_family_id) WHERE parent_family_id IS NOT NULL;
