-- The kernel now keeps a refresh family's scope (core tenant migration 0003): move ours there.
UPDATE refresh_tokens r SET scope = f.scope
  FROM compat_token_families f
 WHERE r.family_id = f.family_id AND r.scope IS NULL;
ALTER TABLE compat_token_families DROP COLUMN scope;

-- Families minted from an API token before that fix were issued to the token's creator and
-- could be refreshed into the creator's full powers (issue 13, finding 1): revoke them.
UPDATE refresh_tokens SET revoked_at = now()
 WHERE revoked_at IS NULL
   AND family_id IN (SELECT family_id FROM compat_access_tokens
                      WHERE issued_by LIKE 'token:%' AND family_id IS NOT NULL);
