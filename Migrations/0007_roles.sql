-- Least-privilege roles (docs/security.md). The roles themselves are cluster-wide and made by
-- `orcastra roles setup`; what lives in this database is which login role may work which
-- namespace, and which login role registered each worker row.
--
-- A worker role may only EXECUTE the worker-protocol functions, which are SECURITY DEFINER with a
-- fixed search_path (functions/access.sql). claim_steps, register_worker and template_definition
-- refuse (SQLSTATE OR007) a namespace the calling login role was not granted here; reports,
-- heartbeats and hand-backs need a lease token, which only a claim hands out.

CREATE TABLE orcastra.namespace_grants (
    -- The role granted (usually a login role; a group role grants every member). regrole, not
    -- name: a renamed role keeps its grants, and a dropped one stops matching instead of failing.
    role       regrole NOT NULL,
    namespace  text NOT NULL CHECK (namespace <> ''),
    granted_at timestamptz NOT NULL DEFAULT now(),
    granted_by name NOT NULL DEFAULT session_user,
    PRIMARY KEY (namespace, role)
);

-- The login role that registered the worker: only it (or an admin) may beat for or deregister
-- that row, or take its name over.
ALTER TABLE orcastra.workers ADD COLUMN login_role name;
