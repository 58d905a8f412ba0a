-- W3C trace context for tasks (docs/tracing.md; the column is in 0008_trace_context.sql).

-- The traceparent a new task is stored with: the caller's, checked and lowercased, or a new one
-- (a new trace id and parent span id, flags 01 = sampled) when the caller gave none, so the steps
-- of every task share one trace even when nobody upstream traces.
-- Raises OR025 for a value that is not a W3C traceparent (version 00 form, ids not all zero,
-- version not ff): an explicit traceparent that cannot be used is refused rather than replaced.
CREATE OR REPLACE FUNCTION orcastra.task_traceparent(p_traceparent text) RETURNS text
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
SET search_path = pg_catalog, orcastra, pg_temp
AS $$
DECLARE
    v_value text := lower(btrim(p_traceparent));
BEGIN
    IF p_traceparent IS NULL THEN
        -- md5 of a random uuid: 32 uniformly random hex digits (a uuid's version nibbles are fixed,
        -- which would bias samplers that read the trace id).
        RETURN '00-' || md5(gen_random_uuid()::text) || '-' || left(md5(gen_random_uuid()::text), 16) || '-01';
    END IF;
    IF v_value !~ '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$' OR left(v_value, 2) = 'ff'
       OR substr(v_value, 4, 32) = repeat('0', 32) OR substr(v_value, 37, 16) = repeat('0', 16) THEN
        RAISE EXCEPTION 'traceparent % is not a W3C trace context', quote_literal(p_traceparent)
            USING ERRCODE = 'OR025',
                  HINT = 'Give 00-<32 hex digits trace id>-<16 hex digits parent id>-<2 hex digits flags>, ids not all zero (https://www.w3.org/TR/trace-context/#traceparent-header), or NULL for a new trace.';
    END IF;
    RETURN v_value;
END
$$;
