-- Template lifecycle (issue 13): a default version per template, deprecated versions, and
-- idempotency keys scoped per template instead of globally.
--
-- Default and deprecation are metadata beside a version, not its content: a registered version
-- stays immutable (definition, source and content_hash never change). The functions that read
-- and change them are in functions/create_task.sql and functions/template_lifecycle.sql.
-- Depends on 0001 and 0002 only.

-- Deprecation ---------------------------------------------------------------------------------------
-- A deprecated version still runs: tasks made from it go on, and a new task may still pin it when
-- it says so (create_task's p_allow_deprecated). Without that, create_task refuses it, and a
-- reference without a version never takes it.
ALTER TABLE orcastra.templates
    ADD COLUMN deprecated_at timestamptz,
    ADD COLUMN deprecation_reason text;

-- Default versions -----------------------------------------------------------------------------------
-- What a reference without a version takes, for the templates that have one set; the others take
-- their highest release that is not deprecated. A default is never a deprecated version (the
-- functions refuse both orders), and the foreign key keeps it a registered one.
CREATE TABLE orcastra.template_defaults (
    namespace text NOT NULL,
    name      text NOT NULL,
    version   text NOT NULL,
    set_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace, name),
    FOREIGN KEY (namespace, name, version) REFERENCES orcastra.templates (namespace, name, version)
);

-- Idempotency keys per template ----------------------------------------------------------------------
-- A key is unique within one template (namespace/name, any version): the same key under another
-- template makes a task of its own. `idempotency_scope` is that template's 'namespace/name', set
-- only beside a key, so a row without a key stays as narrow as before. It never changes once
-- written, so the index on it does not cost HOT updates.
ALTER TABLE orcastra.tasks ADD COLUMN idempotency_scope text;

-- Existing keys were unique across all templates, so they are unique within each one too.
UPDATE orcastra.tasks t SET idempotency_scope = tp.namespace || '/' || tp.name
FROM orcastra.templates tp
WHERE tp.id = t.template_id AND t.idempotency_key IS NOT NULL;

ALTER TABLE orcastra.tasks ADD CONSTRAINT tasks_idempotency_scope_with_key
    CHECK ((idempotency_key IS NULL) = (idempotency_scope IS NULL));

CREATE UNIQUE INDEX tasks_idempotency ON orcastra.tasks (idempotency_scope, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- The global uniqueness of 0001 (`idempotency_key text UNIQUE`). Until functions/create_task.sql
-- is applied again (by the same `orcastra migrate`, right after this file), the old create_task's
-- ON CONFLICT (idempotency_key) matches no index: a submission with a key fails in that moment.
ALTER TABLE orcastra.tasks DROP CONSTRAINT IF EXISTS tasks_idempotency_key_key;
