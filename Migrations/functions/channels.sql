-- Notification channels: how processes wake each other. A notification carries no state; it only
-- says "look again" (docs/worker-protocol.md).

-- The channel a namespace's workers LISTEN on. PostgreSQL cuts channel names at 63 bytes, so a long
-- namespace gets a shortened name made unique by a hash: every valid namespace has its own channel.
-- Workers ask this function for their channel instead of building the name themselves.
CREATE OR REPLACE FUNCTION orcastra.namespace_channel(p_namespace text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN octet_length('orcastra_ns_' || p_namespace) <= 63 THEN 'orcastra_ns_' || p_namespace
                ELSE 'orcastra_ns_' || left(p_namespace, 30) || '_' || left(md5(p_namespace), 20) END;
$$;

-- Notifications sent after the commit (issue 12, latency under load). PostgreSQL serializes the
-- commits of transactions that sent a NOTIFY — one lock for the whole cluster, held through the
-- commit's WAL flush — so under continuous submission the notifying commits queued behind each
-- other's fsyncs. A caller that sets the transaction-local setting orcastra.notify_after_commit
-- to 'on' has the engine's notifications collected instead (post_notification) and takes them
-- (take_notifications) as the last statement of its transaction; once that committed, it sends
-- them in a transaction of their own (send_notifications), which writes nothing and so commits
-- without waiting for a flush. The Swift and Python workers (report_steps_then_claim) and TaskCreator do;
-- everyone else gets the notifications at commit, as before. A notification is a hint (the
-- pollers find the work anyway), so one lost with a connection between the two costs latency only.

-- Sends a notification at commit, or collects it when the transaction sends its own after commit.
CREATE OR REPLACE FUNCTION orcastra.post_notification(p_channel text, p_payload text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('orcastra.notify_after_commit', true) = 'on' THEN
        PERFORM set_config('orcastra.pending_notifications',
                           coalesce(current_setting('orcastra.pending_notifications', true), '')
                           || p_channel || E'\t' || p_payload || E'\n', true);
    ELSE
        PERFORM pg_notify(p_channel, p_payload);
    END IF;
END
$$;

-- The notifications collected in this transaction (one "channel<TAB>payload" line each; '' when
-- none), forgotten here: the caller sends them with send_notifications once this transaction
-- committed.
CREATE OR REPLACE FUNCTION orcastra.take_notifications() RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_pending text := coalesce(current_setting('orcastra.pending_notifications', true), '');
BEGIN
    PERFORM set_config('orcastra.pending_notifications', '', true);
    PERFORM set_config('orcastra.notify_after_commit', '', true);
    RETURN v_pending;
END
$$;

-- Sends what take_notifications returned, each distinct one once, in the caller's transaction,
-- which must write nothing else: it is committed without waiting for its WAL flush (nothing of it
-- needs to survive a crash), so it holds PostgreSQL's notification lock only for a moment.
CREATE OR REPLACE FUNCTION orcastra.send_notifications(p_pending text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    PERFORM pg_notify(split_part(l.line, E'\t', 1), split_part(l.line, E'\t', 2))
    FROM (SELECT DISTINCT x.line FROM regexp_split_to_table(p_pending, E'\n') AS x(line) WHERE x.line <> '') AS l;
END
$$;

-- Wakes the workers of each namespace once, however many of its steps became ready.
CREATE OR REPLACE FUNCTION orcastra.notify_namespaces(p_namespaces text[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM orcastra.post_notification(orcastra.namespace_channel(n.namespace), '')
    FROM (SELECT DISTINCT unnest(p_namespaces) AS namespace) AS n
    WHERE n.namespace IS NOT NULL;
END
$$;

-- Wake-ups left to the claim that follows in this transaction (report_steps_then_claim): the
-- namespaces are kept in the transaction-local setting orcastra.deferred_wakeups until
-- send_deferred_wakeups sends what is still needed (kept as a text[] literal).
CREATE OR REPLACE FUNCTION orcastra.defer_wakeups(p_namespaces text[]) RETURNS void
LANGUAGE sql AS $$
    SELECT set_config('orcastra.deferred_wakeups',
                      ARRAY(SELECT unnest(coalesce(nullif(current_setting('orcastra.deferred_wakeups', true), '')::text[], '{}'))
                            UNION SELECT unnest(p_namespaces))::text, true);
$$;

-- Called by claim_steps once it has claimed in p_namespace, p_full saying whether its pick took as
-- many as it asked for. Notifies every deferred namespace other than the claim's. The claim's own
-- is notified only if steps may be left there that another worker could take now: when the pick
-- was full and the queue is not empty, or when a step waiting for a concurrency slot is queued
-- there (whoever frees the slot may not notify). A pick that took fewer than it asked for took every
-- step of the namespace it could see and lock: whatever this transaction enqueued there it claimed
-- itself, and the rest is held by other claims, which take it.
CREATE OR REPLACE FUNCTION orcastra.send_deferred_wakeups(p_namespace text, p_full boolean) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_deferred text := current_setting('orcastra.deferred_wakeups', true);
BEGIN
    IF v_deferred IS NULL OR v_deferred = '' THEN RETURN; END IF;
    PERFORM set_config('orcastra.deferred_wakeups', '', true);
    PERFORM orcastra.post_notification(orcastra.namespace_channel(n.namespace), '')
    FROM unnest(v_deferred::text[]) AS n(namespace)
    WHERE n.namespace IS DISTINCT FROM p_namespace
       OR (p_full AND EXISTS (SELECT 1 FROM orcastra.step_queue q WHERE q.namespace = n.namespace))
       OR EXISTS (SELECT 1 FROM orcastra.step_queue q WHERE q.namespace = n.namespace AND q.limit_scope IS NOT NULL);
END
$$;
