-- API tokens (issue 15): bearer tokens for the HTTP API (`orcastra token create|list|revoke`).
--
-- A token is `orc_<prefix>_<secret>`. Only the SHA-256 of the whole token is stored; the prefix
-- (random, unique) finds the row, and the server compares the hash of what it was given with
-- `token_hash` in constant time. The token itself is printed once, at creation, and never again.
-- A revoked token keeps its row (and its name) so `token list` shows when it was revoked.
-- Depends on 0001.

CREATE TABLE orcastra.api_tokens (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$'),
    prefix        text NOT NULL UNIQUE CHECK (prefix ~ '^[0-9a-f]{12}$'),
    token_hash    bytea NOT NULL CHECK (length(token_hash) = 32),
    -- `admin` implies every other scope.
    scopes        text[] NOT NULL CHECK (cardinality(scopes) > 0
                                         AND scopes <@ ARRAY['tasks:read', 'tasks:write', 'templates:write', 'admin']),
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    revoked_at    timestamptz,
    -- Updated at most once a minute per token, so a busy client does not write on every request.
    last_used_at  timestamptz
);
