-- Dashboard sessions (issue 17, docs/dashboard.md): who is signed in to the web dashboard.
--
-- Signing in at /login with an API token makes a row here; the browser keeps only a random
-- session id in an HttpOnly, SameSite=Strict cookie, and only its SHA-256 is stored (as for the
-- tokens themselves). Every page reads the session joined to its token, so revoking or expiring the
-- token ends its sessions at once, and signing out deletes the row: nothing a stolen cookie could
-- still use. Server-side rather than a signed cookie so that no signing key has to be shared by
-- every orchestrator that serves the dashboard.
--
-- csrf_token is the session's synchronizer token: every form the dashboard serves carries it, and
-- every POST must send it back. Depends on 0006.

CREATE TABLE orcastra.dashboard_sessions (
    session_hash  bytea PRIMARY KEY CHECK (length(session_hash) = 32),
    token_id      bigint NOT NULL REFERENCES orcastra.api_tokens (id) ON DELETE CASCADE,
    csrf_token    text NOT NULL CHECK (length(csrf_token) >= 32),
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);

-- Sign-in removes expired sessions through this index.
CREATE INDEX dashboard_sessions_expires ON orcastra.dashboard_sessions (expires_at);
CREATE INDEX dashboard_sessions_token ON orcastra.dashboard_sessions (token_id);
