-- Orcastra's core schema: the template registry, tasks, steps, edges and the two audited state
-- machines. Hot tables keep rows narrow (payloads and results live in side tables), leave room for
-- HOT updates (fillfactor) and are served by partial indexes on live states only, so their cost
-- does not grow with history.

CREATE SCHEMA IF NOT EXISTS orcastra;

-- Templates ----------------------------------------------------------------------------------------

CREATE TABLE orcastra.templates (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    namespace     text NOT NULL,
    name          text NOT NULL,
    version       text NOT NULL,
    description   text,
    -- The parsed, defaults-applied definition (see docs/templates.md): what workers execute.
    definition    jsonb NOT NULL,
    -- The YAML as the user wrote it, for `template show`.
    source        text NOT NULL,
    -- SHA-256 of the normalized definition: same version + other hash = refused.
    content_hash  text NOT NULL,
    step_count    integer NOT NULL CHECK (step_count > 0),
    registered_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (namespace, name, version)
);

-- State machines: the legal transitions, mirrored from the Swift tables (a test keeps them equal).

CREATE TABLE orcastra.task_state_transitions_allowed (
    from_state text NOT NULL,
    to_state   text NOT NULL,
    PRIMARY KEY (from_state, to_state)
);

INSERT INTO orcastra.task_state_transitions_allowed (from_state, to_state) VALUES
    ('pending', 'in_progress'), ('pending', 'cancelled'),
    ('in_progress', 'waiting_for_retry'), ('in_progress', 'error'), ('in_progress', 'complete'),
    ('in_progress', 'cancelled'), ('in_progress', 'resolved_manually'),
    ('waiting_for_retry', 'in_progress'), ('waiting_for_retry', 'complete'), ('waiting_for_retry', 'error'),
    ('waiting_for_retry', 'cancelled'), ('waiting_for_retry', 'resolved_manually'),
    ('error', 'in_progress'), ('error', 'complete'), ('error', 'cancelled'), ('error', 'resolved_manually');

CREATE TABLE orcastra.step_state_transitions_allowed (
    from_state text NOT NULL,
    to_state   text NOT NULL,
    PRIMARY KEY (from_state, to_state)
);

INSERT INTO orcastra.step_state_transitions_allowed (from_state, to_state) VALUES
    ('pending', 'enqueued'), ('pending', 'cancelled'), ('pending', 'resolved_manually'),
    ('enqueued', 'in_progress'), ('enqueued', 'cancelled'),
    ('in_progress', 'complete'), ('in_progress', 'waiting_for_retry'), ('in_progress', 'error'),
    ('in_progress', 'enqueued'), ('in_progress', 'cancelled'),
    ('waiting_for_retry', 'enqueued'), ('waiting_for_retry', 'cancelled'), ('waiting_for_retry', 'resolved_manually'),
    ('error', 'enqueued'), ('error', 'resolved_manually');

-- Tasks ---------------------------------------------------------------------------------------------

CREATE TABLE orcastra.tasks (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    template_id     bigint NOT NULL REFERENCES orcastra.templates (id),
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN
                        ('pending', 'in_progress', 'waiting_for_retry', 'error', 'complete', 'cancelled', 'resolved_manually')),
    -- Why the task last changed state; the trigger copies it into task_transitions.
    state_reason    text NOT NULL DEFAULT 'created',
    priority        integer NOT NULL DEFAULT 0,
    idempotency_key text UNIQUE,
    context         jsonb NOT NULL,
    run_at          timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    error           text
) WITH (fillfactor = 80);

-- Scheduled tasks waiting for their start time.
CREATE INDEX tasks_pending_run_at ON orcastra.tasks (run_at) WHERE state = 'pending';
-- Unfinished tasks, for the orchestrator's finalization sweep.
CREATE INDEX tasks_live ON orcastra.tasks (created_at) WHERE state IN ('in_progress', 'waiting_for_retry');
-- Listing, newest first.
CREATE INDEX tasks_created_at ON orcastra.tasks (created_at DESC);
CREATE INDEX tasks_template ON orcastra.tasks (template_id, created_at DESC);

CREATE TABLE orcastra.task_transitions (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id    uuid NOT NULL REFERENCES orcastra.tasks (id) ON DELETE CASCADE,
    from_state text,
    to_state   text NOT NULL,
    reason     text NOT NULL,
    metadata   jsonb,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX task_transitions_task ON orcastra.task_transitions (task_id, id);

-- Steps ---------------------------------------------------------------------------------------------

CREATE TABLE orcastra.steps (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id          uuid NOT NULL REFERENCES orcastra.tasks (id) ON DELETE CASCADE,
    name             text NOT NULL,
    -- The worker pool that runs it.
    namespace        text NOT NULL,
    state            text NOT NULL DEFAULT 'pending' CHECK (state IN
                         ('pending', 'enqueued', 'in_progress', 'waiting_for_retry', 'complete', 'error', 'cancelled', 'resolved_manually')),
    state_reason     text NOT NULL DEFAULT 'created',
    -- Copied from the task so claiming needs no join.
    priority         integer NOT NULL DEFAULT 0,
    attempts         integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL CHECK (max_attempts > 0),
    -- Parents not yet complete: readiness costs O(edges touched), never a scan of the DAG.
    pending_parents  integer NOT NULL CHECK (pending_parents >= 0),
    -- When an enqueued step may be claimed, or when a waiting one is retried.
    visible_at       timestamptz NOT NULL DEFAULT now(),
    enqueued_at      timestamptz,
    -- The lease of the worker running it; completion must present the token.
    lease_token      uuid,
    lease_owner      text,
    lease_expires_at timestamptz,
    started_at       timestamptz,
    finished_at      timestamptz,
    last_error       text,
    UNIQUE (task_id, name)
) WITH (fillfactor = 70);

-- Claiming: enqueued steps of one namespace by priority then age.
CREATE INDEX steps_claimable ON orcastra.steps (namespace, priority DESC, enqueued_at, id) WHERE state = 'enqueued';
-- Lease recovery: running steps by lease expiry.
CREATE INDEX steps_leases ON orcastra.steps (lease_expires_at) WHERE state = 'in_progress';
-- Retries coming due.
CREATE INDEX steps_retry_due ON orcastra.steps (visible_at) WHERE state = 'waiting_for_retry';

-- Every state change leaves a dead tuple: vacuum the hot table early and without throttling.
ALTER TABLE orcastra.steps SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000,
                                autovacuum_vacuum_cost_delay = 0, autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE orcastra.tasks SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 0);

CREATE TABLE orcastra.step_edges (
    parent_id bigint NOT NULL REFERENCES orcastra.steps (id) ON DELETE CASCADE,
    child_id  bigint NOT NULL REFERENCES orcastra.steps (id) ON DELETE CASCADE,
    PRIMARY KEY (parent_id, child_id)
);
CREATE INDEX step_edges_child ON orcastra.step_edges (child_id);

-- Results are written once, by the attempt that completed the step (or by an operator).
CREATE TABLE orcastra.step_results (
    step_id    bigint PRIMARY KEY REFERENCES orcastra.steps (id) ON DELETE CASCADE,
    result     jsonb NOT NULL,
    written_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE orcastra.step_transitions (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    step_id    bigint NOT NULL REFERENCES orcastra.steps (id) ON DELETE CASCADE,
    task_id    uuid NOT NULL,
    from_state text,
    to_state   text NOT NULL,
    attempt    integer NOT NULL,
    reason     text NOT NULL,
    metadata   jsonb,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX step_transitions_step ON orcastra.step_transitions (step_id, id);
CREATE INDEX step_transitions_task ON orcastra.step_transitions (task_id);

-- Enforcement and audit -----------------------------------------------------------------------------
-- Every state change, whatever statement makes it, is checked against the table of legal moves and
-- written as a transition row in the same transaction. Illegal moves fail with SQLSTATE OR001.

CREATE FUNCTION orcastra.audit_task_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM orcastra.task_state_transitions_allowed
                   WHERE from_state = OLD.state AND to_state = NEW.state) THEN
        RAISE EXCEPTION 'illegal task transition from % to % (task %)', OLD.state, NEW.state, OLD.id
            USING ERRCODE = 'OR001', HINT = 'See docs/state-machines.md for the legal transitions.';
    END IF;
    INSERT INTO orcastra.task_transitions (task_id, from_state, to_state, reason)
    VALUES (NEW.id, OLD.state, NEW.state, NEW.state_reason);
    -- Wakes whoever waits for this task (`orcastra submit --wait`); one per task per transaction.
    PERFORM pg_notify('orcastra_task_events', NEW.id::text);
    RETURN NEW;
END
$$;

CREATE TRIGGER tasks_state_change BEFORE UPDATE OF state ON orcastra.tasks
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION orcastra.audit_task_transition();

CREATE FUNCTION orcastra.audit_step_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM orcastra.step_state_transitions_allowed
                   WHERE from_state = OLD.state AND to_state = NEW.state) THEN
        RAISE EXCEPTION 'illegal step transition from % to % (step % of task %)', OLD.state, NEW.state, OLD.id, OLD.task_id
            USING ERRCODE = 'OR001', HINT = 'See docs/state-machines.md for the legal transitions.';
    END IF;
    INSERT INTO orcastra.step_transitions (step_id, task_id, from_state, to_state, attempt, reason, metadata)
    VALUES (NEW.id, NEW.task_id, OLD.state, NEW.state, NEW.attempts, NEW.state_reason,
            CASE WHEN NEW.lease_owner IS NOT NULL THEN jsonb_build_object('worker', NEW.lease_owner) END);
    RETURN NEW;
END
$$;

CREATE TRIGGER steps_state_change BEFORE UPDATE OF state ON orcastra.steps
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION orcastra.audit_step_transition();
