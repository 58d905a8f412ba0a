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
--                                  whose input schema and deprecation the caller checked
--   p_fire_errors                  NULL, or why the occurrence makes no task (no template, a
--                                  deprecated pinned version, a context the schema refuses):
--                                  recorded as a failed firing
-- Each occurrence, in order: with overlap 'skip' and the schedule's last task unfinished
-- (pending, in_progress, waiting_for_retry — or made by an earlier occurrence of this call) it is
-- skipped; with 'cancel_previous' that task is cancelled first (an earlier occurrence of this
-- call that would have made it makes none instead: 'superseded'); the others make a task with the
-- schedule's context plus "scheduled_for", all of them in one create_tasks call.
-- Returns one row per occurrence: its outcome ('created', 'existed', 'skipped', 'superseded',
-- 'failed'), the task made (or the unfinished one that made it skip) and a detail for people.
-- The schedules' bookkeeping is written once per schedule, at the end.
--
-- No subtransaction per occurrence (an EXCEPTION block cost 0.5 ms each, more than the task):
-- the caller checks what can fail beforehand, and if the call fails anyway it fires the batch's
-- schedules one at a time, recording the error of the one that fails (ScheduleFirer.swift).
CREATE OR REPLACE FUNCTION orcastra.fire_schedules(p_ids bigint[], p_next timestamptz[],
                                                  p_fire_ids bigint[], p_fire_at timestamptz[],
                                                  p_fire_templates bigint[], p_fire_errors text[])
RETURNS TABLE (schedule_id bigint, scheduled_for timestamptz, outcome text, task_id uuid, detail text)
LANGUAGE plpgsql -- generic plans on indexes; create_tasks keeps its own settings: see the top of claim.sql
SECURITY DEFINER SET search_path = pg_catalog, orcastra, pg_temp -- least-privilege roles: see access.sql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
    v_count integer := coalesce(cardinality(p_fire_ids), 0);
    v_schedule record;
    v_current bigint;
    v_previous text;
    v_last_task uuid;            -- the schedule's last task before this call, while it is the latest
    v_pending integer;           -- the occurrence of this call that will make the schedule's latest task
    v_instant text;
    -- Per occurrence: outcome, task, detail; and the creations handed to create_tasks.
    o_outcome text[] := array_fill(NULL::text, ARRAY[v_count]);
    o_task uuid[] := array_fill(NULL::uuid, ARRAY[v_count]);
    o_detail text[] := array_fill(NULL::text, ARRAY[v_count]);
    c_index integer[] := '{}';
    c_templates bigint[] := '{}';
    c_contexts jsonb[] := '{}';
    c_keys text[] := '{}';
    c_priorities integer[] := '{}';
    v_made record;
BEGIN
    -- 1. Decide each occurrence's fate (skip, supersede, cancel the previous task, fail, create).
    FOR i IN 1 .. v_count LOOP
        IF p_fire_ids[i] IS DISTINCT FROM v_current THEN
            SELECT s.id, s.namespace, s.name, s.context, s.priority, s.overlap, s.last_task_id INTO v_schedule
            FROM orcastra.schedules s WHERE s.id = p_fire_ids[i];
            v_current := p_fire_ids[i];
            v_last_task := v_schedule.last_task_id;
            v_pending := NULL;
        END IF;
        CONTINUE WHEN v_schedule.id IS NULL;
        v_instant := orcastra.schedule_instant_text(p_fire_at[i]);

        v_previous := NULL;
        IF v_pending IS NOT NULL THEN
            v_previous := 'to be created';
        ELSIF v_schedule.overlap <> 'allow' AND v_last_task IS NOT NULL THEN
            SELECT t.state INTO v_previous FROM orcastra.tasks t WHERE t.id = v_last_task;
        END IF;

        IF p_fire_errors[i] IS NOT NULL THEN
            o_outcome[i] := 'failed';
            o_detail[i] := p_fire_errors[i];
            CONTINUE;
        END IF;
        IF v_schedule.overlap = 'skip' AND v_previous IN ('pending', 'in_progress', 'waiting_for_retry', 'to be created') THEN
            o_outcome[i] := 'skipped';
            IF v_pending IS NULL THEN
                o_task[i] := v_last_task;
                o_detail[i] := 'the previous task ' || v_last_task || ' is ' || v_previous || ' (overlap: skip)';
            ELSE
                o_detail[i] := 'the previous occurrence''s task has not finished (overlap: skip)';
            END IF;
            CONTINUE;
        END IF;
        IF v_schedule.overlap = 'cancel_previous' AND v_pending IS NOT NULL THEN
            -- An earlier occurrence of this call would make the task this one cancels: it makes none.
            o_outcome[v_pending] := 'superseded';
            o_detail[v_pending] := 'superseded by the occurrence ' || v_instant || ' (overlap: cancel_previous)';
            c_index[array_position(c_index, v_pending)] := NULL;
        ELSIF v_schedule.overlap = 'cancel_previous' AND v_previous IN ('pending', 'in_progress', 'waiting_for_retry') THEN
            PERFORM orcastra.cancel_task(v_last_task,
                'cancelled by schedule ' || v_schedule.namespace || '/' || v_schedule.name || ': its occurrence '
                || v_instant || ' started (overlap: cancel_previous)');
            o_detail[i] := 'cancelled the previous task ' || v_last_task;
        END IF;
        c_index := c_index || i;
        c_templates := c_templates || p_fire_templates[i];
        c_contexts := c_contexts || (v_schedule.context || jsonb_build_object('scheduled_for', v_instant));
        c_keys := c_keys || ('schedule:' || v_schedule.id || ':' || v_instant);
        c_priorities := c_priorities || v_schedule.priority;
        v_pending := i;
    END LOOP;

    -- 2. Every task of the call in one set-based statement (superseded entries left out).
    FOR v_made IN
        SELECT c.task_id, c.created, (array_remove(c_index, NULL))[c.n] AS i
        FROM orcastra.create_tasks(
            (SELECT array_agg(t ORDER BY k) FROM unnest(c_index, c_templates) WITH ORDINALITY AS x(ix, t, k) WHERE ix IS NOT NULL),
            (SELECT array_agg(t ORDER BY k) FROM unnest(c_index, c_contexts) WITH ORDINALITY AS x(ix, t, k) WHERE ix IS NOT NULL),
            (SELECT array_agg(t ORDER BY k) FROM unnest(c_index, c_keys) WITH ORDINALITY AS x(ix, t, k) WHERE ix IS NOT NULL),
            (SELECT array_agg(t ORDER BY k) FROM unnest(c_index, c_priorities) WITH ORDINALITY AS x(ix, t, k) WHERE ix IS NOT NULL)) c
    LOOP
        o_task[v_made.i] := v_made.task_id;
        o_outcome[v_made.i] := CASE WHEN v_made.created THEN 'created' ELSE 'existed' END;
    END LOOP;

    -- 3. One bookkeeping write per schedule: its next occurrence, and what its last occurrence did.
    UPDATE orcastra.schedules s
    SET next_fire_at = n.next_fire_at, updated_at = now(),
        last_fire_at = coalesce(r.at, s.last_fire_at),
        last_task_id = coalesce(r.task, s.last_task_id),
        last_outcome = coalesce(r.outcome, s.last_outcome),
        last_error = CASE WHEN r.schedule IS NULL THEN s.last_error ELSE r.error END,
        fired_count = s.fired_count + coalesce(r.fired, 0),
        skipped_count = s.skipped_count + coalesce(r.skipped, 0)
    FROM unnest(p_ids, p_next) AS n(id, next_fire_at)
    LEFT JOIN (
        SELECT o.schedule,
               (array_agg(o.at ORDER BY o.i DESC))[1] AS at,
               (array_agg(o.task ORDER BY o.i DESC) FILTER (WHERE o.outcome IN ('created', 'existed')))[1] AS task,
               (array_agg(CASE o.outcome WHEN 'existed' THEN 'created' WHEN 'superseded' THEN 'skipped' ELSE o.outcome END ORDER BY o.i DESC))[1] AS outcome,
               (array_agg(CASE WHEN o.outcome = 'failed' THEN o.detail END ORDER BY o.i DESC))[1] AS error,
               count(*) FILTER (WHERE o.outcome = 'created') AS fired,
               count(*) FILTER (WHERE o.outcome IN ('skipped', 'superseded')) AS skipped
        FROM unnest(p_fire_ids, p_fire_at, o_outcome, o_task, o_detail) WITH ORDINALITY AS o(schedule, at, outcome, task, detail, i)
        WHERE o.outcome IS NOT NULL
        GROUP BY o.schedule
    ) r ON r.schedule = n.id
    WHERE s.id = n.id;

    RETURN QUERY
    SELECT o.schedule, o.at, o.outcome, o.task, o.detail
    FROM unnest(p_fire_ids, p_fire_at, o_outcome, o_task, o_detail) WITH ORDINALITY AS o(schedule, at, outcome, task, detail, i)
    WHERE o.outcome IS NOT NULL
    ORDER BY o.i;
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
