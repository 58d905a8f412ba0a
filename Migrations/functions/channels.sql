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

-- Wakes the workers of each namespace once, however many of its steps became ready.
CREATE OR REPLACE FUNCTION orcastra.notify_namespaces(p_namespaces text[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(orcastra.namespace_channel(n.namespace), '')
    FROM (SELECT DISTINCT unnest(p_namespaces) AS namespace) AS n
    WHERE n.namespace IS NOT NULL;
END
$$;
