-- Schedules (issue 14): recurring tasks from cron expressions, fired by the orchestrators.
--
-- A schedule names a template (pinned to a version, or unpinned: the version an unpinned
-- submission takes at fire time), a context and a cron expression in a time zone. Orchestrators
-- fire due schedules with orcastra.fire_schedules (functions/schedules.sql) in one transaction per
-- batch: the task is created, with an idempotency key made of the schedule's id and the occurrence,
-- and next_fire_at advanced. Rows are taken with FOR UPDATE SKIP LOCKED, so any number of
-- orchestrators fire without a leader and each occurrence makes exactly one task.
--
-- Cron arithmetic (next_fire_at) is done in Swift (Sources/OrcastraSchedules), by the client that
-- creates or changes a schedule and by the orchestrator that fires it; SQL stores the result.
-- Depends on 0001.

CREATE TABLE orcastra.schedules (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The template's namespace: a schedule lives in the namespace of what it runs, and its name
    -- is unique there (`orcastra schedule show billing/nightly`).
    namespace         text NOT NULL CHECK (namespace <> ''),
    name              text NOT NULL CHECK (name <> ''),
    template_name     text NOT NULL CHECK (template_name <> ''),
    -- NULL: unpinned, resolved at each firing like `orcastra submit ns/name`.
    template_version  text,
    -- As written (5 or 6 fields, or a macro such as @daily); parsed by the Swift cron parser.
    cron              text NOT NULL,
    -- An IANA time zone name; the cron expression is read in local time there.
    timezone          text NOT NULL DEFAULT 'UTC',
    -- Nothing fires before start_at or after end_at.
    start_at          timestamptz,
    end_at            timestamptz,
    -- Each task's context is this object plus "scheduled_for" (the occurrence, RFC 3339 UTC).
    context           jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(context) = 'object'),
    priority          integer NOT NULL DEFAULT 0,
    -- Occurrences missed while no orchestrator ran: one task for the latest, one for each, or none.
    catch_up          text NOT NULL DEFAULT 'latest' CHECK (catch_up IN ('latest', 'all', 'none')),
    -- While the previous task of this schedule is unfinished: start another anyway, skip the
    -- occurrence, or cancel the previous task first.
    overlap           text NOT NULL DEFAULT 'allow' CHECK (overlap IN ('allow', 'skip', 'cancel_previous')),
    paused            boolean NOT NULL DEFAULT false,
    -- The next occurrence not yet fired; NULL when none is left (end_at passed, or an expression
    -- such as `0 0 30 2 *` that never matches).
    next_fire_at      timestamptz,
    -- Bookkeeping of the last firing: the occurrence, the task it made (or the one that was still
    -- running when the occurrence was skipped), and what went wrong if it made none.
    last_fire_at      timestamptz,
    last_task_id      uuid,
    last_outcome      text CHECK (last_outcome IN ('created', 'skipped', 'failed')),
    last_error        text,
    fired_count       bigint NOT NULL DEFAULT 0,
    skipped_count     bigint NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (namespace, name),
    CONSTRAINT schedules_end_after_start CHECK (start_at IS NULL OR end_at IS NULL OR end_at > start_at)
-- Every firing updates the row: leave room for HOT updates (the due index is on next_fire_at, which
-- does change, but the row stays on its page).
) WITH (fillfactor = 70);

-- What the orchestrators look for: due schedules, earliest first. Paused ones and finished ones
-- (next_fire_at NULL) are not in it.
CREATE INDEX schedules_due ON orcastra.schedules (next_fire_at) WHERE NOT paused AND next_fire_at IS NOT NULL;
