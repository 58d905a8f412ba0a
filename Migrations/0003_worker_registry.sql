-- The worker registry: one row per running worker process, kept current by the worker itself
-- (register at start, a beat with its heartbeat round, deregister at a clean exit). It is what
-- `orcastra worker list` shows and how `orcastra task show` knows that no live worker serves a
-- namespace. Advisory only: claiming, leases and reports never read it, so it adds nothing to a
-- step's cost, and a worker that does not register still works — it is just not listed.
--
-- A row whose beat is older than orcastra.worker_stale_after(heartbeat_ms) (functions/workers.sql)
-- belongs to a worker that was killed or lost the database: it is "stale". The orchestrator's
-- chores delete rows stale for 24 hours (orcastra.prune_workers).

CREATE TABLE orcastra.workers (
    -- The worker's name: the same text it passes to claim_steps as p_worker, so it is the step's
    -- lease_owner and the "worker" of the step transitions' metadata (`host-pid-random` for the
    -- Swift worker).
    id            text PRIMARY KEY CHECK (id <> ''),
    -- The namespace it claims steps of.
    namespace     text NOT NULL,
    host          text NOT NULL,
    pid           integer NOT NULL,
    -- The worker's software version (the stock worker: Orcastra's).
    version       text NOT NULL,
    -- How many steps it runs at once, and how many it held at its last beat.
    concurrency   integer NOT NULL CHECK (concurrency > 0),
    running_steps integer NOT NULL DEFAULT 0 CHECK (running_steps >= 0),
    -- How often it promises to beat; staleness is measured against it.
    heartbeat_ms  integer NOT NULL CHECK (heartbeat_ms > 0),
    started_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now()
-- Every row is updated at every beat: leave room for HOT updates (no index covers last_seen_at).
) WITH (fillfactor = 50);

CREATE INDEX workers_namespace ON orcastra.workers (namespace);
