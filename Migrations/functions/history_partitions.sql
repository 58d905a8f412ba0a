-- Partitions of the history (task_transitions and step_transitions, partitioned by their task's
-- creation week in migration 0014; docs/retention.md, "Partitioned history"): created weeks ahead
-- and dropped whole once no task of their week is left, by every orchestrator's chore
-- (maintain_history_partitions, after each retention round) and by `orcastra prune`.
--
-- A partition holds the rows of the tasks created in one week, Monday 00:00 UTC to the next, and is
-- named <table>_pYYYYMMDD after its Monday. A row whose week has none goes to <table>_default; the
-- chore gives such a week its partition (moving the rows), so the default partition stays empty.

-- The week (its Monday 00:00 UTC) a task created at p_at belongs to.
CREATE OR REPLACE FUNCTION orcastra.history_week(p_at timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT date_trunc('week', p_at, 'UTC') $$;

-- Creates p_table's partition for the week starting p_week (a Monday 00:00 UTC) unless it exists,
-- moving any rows of that week out of the default partition into it. Returns the rows moved, or
-- NULL when the partition existed. Run under maintain_history_partitions' lock.
CREATE OR REPLACE FUNCTION orcastra.create_history_partition(p_table text, p_week timestamptz) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, orcastra, pg_temp
AS $$
DECLARE
    v_name text := p_table || '_p' || to_char(p_week AT TIME ZONE 'UTC', 'YYYYMMDD');
    v_end timestamptz := p_week + interval '1 week';
    v_waiting bigint;
BEGIN
    IF p_table NOT IN ('task_transitions', 'step_transitions') THEN
        RAISE EXCEPTION 'orcastra.create_history_partition: % is not a history table', p_table
            USING ERRCODE = 'OR021', HINT = 'Give task_transitions or step_transitions.';
    END IF;
    IF p_week IS DISTINCT FROM orcastra.history_week(p_week) THEN
        RAISE EXCEPTION 'orcastra.create_history_partition: % is not the start of a week (Monday 00:00 UTC)', p_week
            USING ERRCODE = 'OR021', HINT = 'Give orcastra.history_week(t) for a time t in the week.';
    END IF;
    IF to_regclass(format('orcastra.%I', v_name)) IS NOT NULL THEN RETURN NULL; END IF;
    EXECUTE format('SELECT count(*) FROM orcastra.%I WHERE task_created_at >= $1 AND task_created_at < $2', p_table || '_default')
        INTO v_waiting USING p_week, v_end;
    IF v_waiting = 0 THEN
        EXECUTE format('CREATE TABLE orcastra.%I PARTITION OF orcastra.%I FOR VALUES FROM (%L) TO (%L)',
                       v_name, p_table, p_week, v_end);
        RETURN 0;
    END IF;
    -- The week's rows are in the default partition: a partition for them cannot be created while
    -- they are there, so they move into a table that is then attached (in this transaction).
    EXECUTE format('CREATE TABLE orcastra.%I (LIKE orcastra.%I INCLUDING DEFAULTS)', v_name, p_table);
    EXECUTE format('WITH moved AS (DELETE FROM orcastra.%I WHERE task_created_at >= $1 AND task_created_at < $2 RETURNING *) '
                   'INSERT INTO orcastra.%I SELECT * FROM moved', p_table || '_default', v_name)
        USING p_week, v_end;
    EXECUTE format('ALTER TABLE orcastra.%I ATTACH PARTITION orcastra.%I FOR VALUES FROM (%L) TO (%L)',
                   p_table, v_name, p_week, v_end);
    RETURN v_waiting;
END
$$;

-- The partitions of both history tables, oldest week first, with their size: what
-- maintain_history_partitions manages and `orcastra prune` reports.
CREATE OR REPLACE VIEW orcastra.history_partitions AS
SELECT p.relname::text AS table_name, parent.relname::text AS parent_table,
       CASE WHEN p.relname LIKE '%\_default' THEN NULL
            ELSE to_date(substring(p.relname FROM '_p([0-9]{8})$'), 'YYYYMMDD')::timestamp AT TIME ZONE 'UTC' END AS week,
       pg_total_relation_size(p.oid) AS bytes,
       greatest(p.reltuples, 0)::bigint AS estimated_rows
FROM pg_inherits i
JOIN pg_class p ON p.oid = i.inhrelid
JOIN pg_class parent ON parent.oid = i.inhparent
WHERE parent.oid IN ('orcastra.task_transitions'::regclass, 'orcastra.step_transitions'::regclass);

-- The chore: creates both tables' partitions for this week and p_weeks_ahead more, gives a week
-- whose rows wait in a default partition its own, and drops the partitions of every past week in
-- which no task is left (its history belongs to tasks that were pruned). Safe from any number of
-- orchestrators at once: one runs it, the others return skipped. A partition's drop takes a brief
-- exclusive lock on its table (state changes wait for it); it waits at most p_lock_timeout_ms for
-- it and otherwise leaves that partition to the next run.
CREATE OR REPLACE FUNCTION orcastra.maintain_history_partitions(p_weeks_ahead integer DEFAULT 4, p_lock_timeout_ms integer DEFAULT 500,
                                                                OUT created integer, OUT moved_rows bigint,
                                                                OUT dropped integer, OUT dropped_bytes bigint,
                                                                OUT skipped boolean)
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, orcastra, pg_temp -- least-privilege roles: see access.sql
AS $$
DECLARE
    v_this timestamptz := orcastra.history_week(now());
    v_week timestamptz;
    v_table text;
    v_moved bigint;
    v_partition record;
    v_bytes bigint;
BEGIN
    created := 0; moved_rows := 0; dropped := 0; dropped_bytes := 0;
    IF p_weeks_ahead IS NULL OR p_weeks_ahead < 0 OR p_weeks_ahead > 520 THEN
        RAISE EXCEPTION 'orcastra.maintain_history_partitions: p_weeks_ahead must be between 0 and 520, not %', p_weeks_ahead
            USING ERRCODE = 'OR021';
    END IF;
    skipped := NOT pg_try_advisory_xact_lock(hashtext('orcastra.maintain_history_partitions'));
    IF skipped THEN RETURN; END IF;
    PERFORM set_config('lock_timeout', p_lock_timeout_ms || 'ms', true);

    FOREACH v_table IN ARRAY ARRAY['task_transitions', 'step_transitions'] LOOP
        -- Weeks ahead, and any week whose rows went to the default partition.
        FOR v_week IN
            SELECT w FROM generate_series(v_this, v_this + p_weeks_ahead * interval '1 week', interval '1 week') AS g(w)
            UNION
            SELECT DISTINCT orcastra.history_week(d.task_created_at)
            FROM (SELECT x.task_created_at FROM orcastra.task_transitions_default x WHERE v_table = 'task_transitions'
                  UNION ALL
                  SELECT x.task_created_at FROM orcastra.step_transitions_default x WHERE v_table = 'step_transitions') d
            ORDER BY 1
        LOOP
            BEGIN
                v_moved := orcastra.create_history_partition(v_table, v_week);
                IF v_moved IS NOT NULL THEN created := created + 1; moved_rows := moved_rows + v_moved; END IF;
            EXCEPTION WHEN lock_not_available THEN
                NULL; -- busy: the next run creates it (until then the default partition takes its rows)
            END;
        END LOOP;
    END LOOP;

    -- Past weeks no task is left of. The parent is locked before the partition (the order every
    -- insert takes) and the tasks are looked at only once both are ours, so a task created in that
    -- week by a transaction still running is either seen here or its rows wait for the drop to end
    -- and then go to the default partition.
    FOR v_partition IN
        SELECT h.table_name, h.parent_table, h.week FROM orcastra.history_partitions h
        WHERE h.week IS NOT NULL AND h.week + interval '1 week' <= v_this
        ORDER BY h.week, h.parent_table
    LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM orcastra.tasks t
                              WHERE t.created_at >= v_partition.week AND t.created_at < v_partition.week + interval '1 week');
        BEGIN
            EXECUTE format('LOCK TABLE orcastra.%I, orcastra.%I IN ACCESS EXCLUSIVE MODE', v_partition.parent_table, v_partition.table_name);
            CONTINUE WHEN EXISTS (SELECT 1 FROM orcastra.tasks t
                                  WHERE t.created_at >= v_partition.week AND t.created_at < v_partition.week + interval '1 week');
            v_bytes := pg_total_relation_size(format('orcastra.%I', v_partition.table_name)::regclass);
            EXECUTE format('DROP TABLE orcastra.%I', v_partition.table_name);
            dropped := dropped + 1;
            dropped_bytes := dropped_bytes + v_bytes;
        EXCEPTION WHEN lock_not_available THEN
            NULL; -- busy: the next run drops it
        END;
    END LOOP;

END
$$;
