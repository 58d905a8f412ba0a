-- Firing schedules (docs/schedules.md). The cron arithmetic is Swift's (Sources/OrcastraSchedules):
-- an orchestrator locks due schedules, works out which occurrences to fire and the next one, checks
-- each task's context against the template's input schema, and hands the result to
-- orcastra.fire_schedules in the same transaction.
--
-- Exactly once: the orchestrator's SELECT … FOR UPDATE SKIP LOCKED gives each due schedule to one
-- orchestrator; next_fire_at moves past the occurrences in the same transaction that creates their
-- tasks; and each task's idempotency key is 'schedule:<id>:<occurrence>', unique per template, so
-- even a caller that got this wrong could not make a second task for one occurrence.
--
-- Lock order: schedules (ascending id), then steps (ascending id), then tasks (ascending id).
-- fire_schedules locks its schedules first, then may cancel a previous task (cancel_task locks that
-- task's steps, then the task); nothing locks a schedule after a step or a task.

-- The occurrence as it appears in a task's context ("scheduled_for") and idempotency key: RFC 3339
-- in UTC, to the second (cron has no finer unit) or to the microsecond for a manual run.
CREATE OR REPLACE FUNCTION orcastra.schedule_instant_text(p_at timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN date_trunc('second', p_at) = p_at
                THEN to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                ELSE to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') END;
$$;

-- Fires occurrences of schedules the caller has locked (FOR UPDATE) in this transaction.
--   p_ids, p_next                  one entry per schedule: its next occurrence after this firing
--                                  (NULL: none is left), stored whatever the occurrences' fate
--   p_fire_ids, p_fire_at          one entry per occurrence to fire, each schedule's together and
--                                  oldest first
--   p_fire_templates               the template the occurrence runs (orcastra.resolve_template),
--                                  whose input schema the caller checked the context against
--   p_fire_errors                  NULL, or why the occurrence makes no task (no template, a
--                                  deprecated pinned version, a context the schema refuses):
--                                  recorded as a failed firing
-- Each occurrence, in order: with overlap 'skip' and the schedule's last task unfinished
-- (pending, in_progress, waiting_for_retry) it is skipped; with 'cancel_previous' that task is
-- cancelled first; then the task is created with the schedule's context plus "scheduled_for".
-- Returns one row per occurrence: its outcome ('created', 'existed', 'skipped', 'failed'), the
-- task made (or the unfinished one that made it skip) and a detail for people. The schedules'
-- bookkeeping is written once per schedule, at the end.
--
-- No subtransaction per occurrence (an EXCEPTION block cost 0.5 ms each, more than the task):
-- the caller checks what can fail beforehand, and if the call fails anyway it fires the batch's
-- schedules one at a time, recording the error of the one that fails (ScheduleFirer.swift).
CREATE OR REPLACE FUNCTION orcastra.fire_schedules(p_ids bigint[], p_next timestamptz[],
                                                  p_fire_ids bigint[], p_fire_at timestamptz[],
                                                  p_fire_templates bigint[], p_fire_errors text[])
RETURNS TABLE (schedule_id bigint, scheduled_for timestamptz, outcome text, task_id uuid, detail text)
LANGUAGE plpgsql -- generic plans on indexes; create_task keeps its own settings: see the top of claim.sql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
    v_schedule record;
    v_previous text;
    v_instant text;
    v_created boolean;
    -- The schedule being fired, and its bookkeeping so far.
    v_current bigint;
    v_last_task uuid;
    v_last_at timestamptz;
    v_last_outcome text;
    v_last_error text;
    v_fired integer;
    v_skipped integer;
    -- The bookkeeping of every schedule fired, written at the end.
    r_ids bigint[] := '{}';
    r_at timestamptz[] := '{}';
    r_task uuid[] := '{}';
    r_outcome text[] := '{}';
    r_error text[] := '{}';
    r_fired integer[] := '{}';
    r_skipped integer[] := '{}';
BEGIN
    FOR i IN 1 .. coalesce(cardinality(p_fire_ids), 0) LOOP
        IF p_fire_ids[i] IS DISTINCT FROM v_current THEN
            IF v_current IS NOT NULL THEN
                r_ids := r_ids || v_current; r_at := r_at || v_last_at; r_task := r_task || v_last_task;
                r_outcome := r_outcome || v_last_outcome; r_error := r_error || v_last_error;
                r_fired := r_fired || v_fired; r_skipped := r_skipped || v_skipped;
            END IF;
            SELECT s.id, s.namespace, s.name, s.context, s.priority, s.overlap, s.last_task_id INTO v_schedule
            FROM orcastra.schedules s WHERE s.id = p_fire_ids[i];
            v_current := p_fire_ids[i];
            v_last_task := v_schedule.last_task_id;
            v_fired := 0;
            v_skipped := 0;
        END IF;
        CONTINUE WHEN v_schedule.id IS NULL;
        schedule_id := v_schedule.id;
        scheduled_for := p_fire_at[i];
        task_id := NULL;
        detail := NULL;
        v_instant := orcastra.schedule_instant_text(p_fire_at[i]);

        v_previous := NULL;
        IF v_schedule.overlap <> 'allow' AND v_last_task IS NOT NULL THEN
            SELECT t.state INTO v_previous FROM orcastra.tasks t WHERE t.id = v_last_task;
        END IF;

        IF p_fire_errors[i] IS NOT NULL THEN
            outcome := 'failed';
            detail := p_fire_errors[i];
        ELSIF v_schedule.overlap = 'skip' AND v_previous IN ('pending', 'in_progress', 'waiting_for_retry') THEN
            outcome := 'skipped';
            task_id := v_last_task;
            detail := 'the previous task ' || v_last_task || ' is ' || v_previous || ' (overlap: skip)';
        ELSE
            IF v_schedule.overlap = 'cancel_previous' AND v_previous IN ('pending', 'in_progress', 'waiting_for_retry') THEN
                PERFORM orcastra.cancel_task(v_last_task,
                    'cancelled by schedule ' || v_schedule.namespace || '/' || v_schedule.name || ': its occurrence '
                    || v_instant || ' started (overlap: cancel_previous)');
                detail := 'cancelled the previous task ' || v_last_task;
            END IF;
            SELECT c.task_id, c.created INTO task_id, v_created
            FROM orcastra.create_task(p_fire_templates[i],
                                      v_schedule.context || jsonb_build_object('scheduled_for', v_instant),
                                      'schedule:' || v_schedule.id || ':' || v_instant,
                                      v_schedule.priority) c;
            outcome := CASE WHEN v_created THEN 'created' ELSE 'existed' END;
        END IF;

        v_last_at := p_fire_at[i];
        v_last_outcome := CASE WHEN outcome = 'existed' THEN 'created' ELSE outcome END;
        v_last_error := CASE WHEN outcome = 'failed' THEN detail END;
        IF outcome IN ('created', 'existed') THEN v_last_task := task_id; END IF;
        IF outcome = 'created' THEN v_fired := v_fired + 1; END IF;
        IF outcome = 'skipped' THEN v_skipped := v_skipped + 1; END IF;
        RETURN NEXT;
    END LOOP;
    IF v_current IS NOT NULL THEN
        r_ids := r_ids || v_current; r_at := r_at || v_last_at; r_task := r_task || v_last_task;
        r_outcome := r_outcome || v_last_outcome; r_error := r_error || v_last_error;
        r_fired := r_fired || v_fired; r_skipped := r_skipped || v_skipped;
    END IF;

    -- One write per schedule: its next occurrence, and what its last occurrence did.
    UPDATE orcastra.schedules s
    SET next_fire_at = n.next_fire_at, updated_at = now(),
        last_fire_at = coalesce(r.at, s.last_fire_at),
        last_task_id = CASE WHEN r.id IS NULL THEN s.last_task_id ELSE r.task END,
        last_outcome = coalesce(r.outcome, s.last_outcome),
        last_error = CASE WHEN r.id IS NULL THEN s.last_error ELSE r.error END,
        fired_count = s.fired_count + coalesce(r.fired, 0),
        skipped_count = s.skipped_count + coalesce(r.skipped, 0)
    FROM unnest(p_ids, p_next) AS n(id, next_fire_at)
    LEFT JOIN unnest(r_ids, r_at, r_task, r_outcome, r_error, r_fired, r_skipped) AS r(id, at, task, outcome, error, fired, skipped)
           ON r.id = n.id
    WHERE s.id = n.id;
END
$$;

-- A manual run (`orcastra schedule trigger`): one task now from the schedule's template (the id
-- the caller resolved and checked), whatever the cron expression, pause or overlap policy say.
-- next_fire_at is left alone. Its key is unique per run, so two runs in one second make two tasks.
CREATE OR REPLACE FUNCTION orcastra.trigger_schedule(p_schedule bigint, p_template bigint)
RETURNS TABLE (task_id uuid, scheduled_for timestamptz)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
    v_schedule record;
    v_at timestamptz := date_trunc('milliseconds', clock_timestamp());
    v_instant text;
BEGIN
    SELECT s.id, s.context, s.priority INTO v_schedule FROM orcastra.schedules s WHERE s.id = p_schedule FOR UPDATE;
    IF NOT FOUND THEN RETURN; END IF;
    v_instant := orcastra.schedule_instant_text(v_at);
    SELECT c.task_id INTO task_id
    FROM orcastra.create_task(p_template, v_schedule.context || jsonb_build_object('scheduled_for', v_instant),
                              'schedule:' || v_schedule.id || ':manual:' || gen_random_uuid(), v_schedule.priority) c;
    UPDATE orcastra.schedules s
    SET last_fire_at = v_at, last_task_id = task_id, last_outcome = 'created', last_error = NULL,
        fired_count = s.fired_count + 1
    WHERE s.id = p_schedule;
    scheduled_for := v_at;
    RETURN NEXT;
END
$$;

-- Wakes the orchestrators when a schedule may fire sooner than they think: a new schedule, one
-- resumed, or one whose next occurrence moved earlier. (Firing moves it later: no wake-up.)
CREATE OR REPLACE FUNCTION orcastra.wake_for_schedule() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT NEW.paused AND NEW.next_fire_at IS NOT NULL
       AND (TG_OP = 'INSERT' OR OLD.paused OR OLD.next_fire_at IS NULL OR NEW.next_fire_at < OLD.next_fire_at) THEN
        PERFORM pg_notify('orcastra_orchestrator', '');
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS schedules_wake ON orcastra.schedules;
CREATE TRIGGER schedules_wake AFTER INSERT OR UPDATE OF next_fire_at, paused ON orcastra.schedules
    FOR EACH ROW EXECUTE FUNCTION orcastra.wake_for_schedule();
