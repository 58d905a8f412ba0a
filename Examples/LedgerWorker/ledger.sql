-- The ledger example's own tables (Examples/LedgerWorker). ledger-worker applies this file at
-- start; it is safe to apply again, and from several workers at once (they take turns on an
-- advisory lock). Orcastra's own migrations never touch the `ledger` schema.
CREATE SCHEMA IF NOT EXISTS ledger;

-- One row per completed step: written by the `ledger.post` handler in the step's own transaction
-- (a TransactionalStepHandler), so a row exists if and only if its step completed. The primary
-- key is the step's id: a second row for the same step would be refused — and never happens,
-- because an attempt whose lease was lost, or whose worker died, rolls back.
CREATE TABLE IF NOT EXISTS ledger.entries (
    step_id   bigint PRIMARY KEY,
    task_id   uuid NOT NULL,
    step_name text NOT NULL,
    account   text NOT NULL,
    cents     bigint NOT NULL,
    attempt   integer NOT NULL,
    posted_at timestamptz NOT NULL DEFAULT now()
);

-- What `ledger-worker --plain` writes: the same insert, committed on its own before the step is
-- reported (the way a handler without a transaction works). No key on step_id, deliberately: a
-- step that runs again after a crash between the insert and the report leaves a second row, which
-- is what the transactional handler prevents (Tests/OrcastraReliabilityTests/ExactlyOnceTests).
CREATE TABLE IF NOT EXISTS ledger.plain_entries (
    id        bigserial PRIMARY KEY,
    step_id   bigint NOT NULL,
    task_id   uuid NOT NULL,
    step_name text NOT NULL,
    account   text NOT NULL,
    cents     bigint NOT NULL,
    attempt   integer NOT NULL,
    posted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS plain_entries_step_id ON ledger.plain_entries (step_id);
