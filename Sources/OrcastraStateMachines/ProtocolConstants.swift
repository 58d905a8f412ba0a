/// Names and codes the SQL functions in `Migrations/` use and Swift code must agree with.
///
/// SQL is the source: these mirror the literals in the function bodies, and `ProtocolConstantsTests`
/// (OrcastraStoreTests) reads them back from a migrated database (`pg_proc.prosrc`, or by calling
/// the functions) so a change on either side without the other fails a test.

/// NOTIFY channels. A notification carries no state; it only says "look again".
public enum ProtocolChannel {
    /// Orchestrators LISTEN here; `report_steps` notifies it when it schedules a retry.
    public static let orchestrator = "orcastra_orchestrator"
    /// The task-state trigger notifies it with the task id on every task state change.
    public static let taskEvents = "orcastra_task_events"
    /// The start of every namespace channel. Do not build a namespace's channel from it: a long
    /// namespace gets a shortened, hashed name; ask `SELECT orcastra.namespace_channel($1)`.
    public static let namespacePrefix = "orcastra_ns_"
}

/// What `orcastra.report_steps` (and `complete_steps` / `fail_steps`) says became of each reported
/// attempt, in its `outcome` column.
public enum ReportOutcome: String, CaseIterable, Sendable {
    /// The result was stored; the step is complete.
    case completed
    /// The failure was stored and the step will be retried after its backoff.
    case waitingForRetry = "waiting_for_retry"
    /// The failure was stored and the step failed for good.
    case error
    /// Nothing was stored: the step's task was cancelled meanwhile, so the step is cancelled.
    case ignored
    /// Nothing was stored: the lease token no longer matches (the step was recovered and may run
    /// elsewhere, or it finished).
    case leaseLost = "lease_lost"
}

/// The SQLSTATEs Orcastra's SQL raises itself (class `OR`, outside PostgreSQL's own codes).
public enum OrcastraSQLState: String, CaseIterable, Sendable {
    /// A state change the machine does not allow (the audit triggers).
    case illegalTransition = "OR001"
    /// An operator action refused in the current state (`retry_step`, `resolve_step`; a deprecated
    /// version made the default or the default deprecated: `set_default_version`, `deprecate_template`).
    case refusedOperatorAction = "OR002"
    /// `create_task` was given a template that is not registered (or no version fits an unpinned reference).
    case templateNotFound = "OR003"
    /// `create_task` was given a deprecated version without `p_allow_deprecated`.
    case templateDeprecated = "OR004"
    /// `complete_step_in_transaction` did not complete the step (its DETAIL says why:
    /// `lease_lost` or `ignored`): the caller's transaction must roll back.
    case stepNotCompleted = "OR005"
    /// A worker-protocol function (`claim_steps`, `register_worker`, `template_definition`) was
    /// called for a namespace the calling login role was not granted (`orcastra roles grant-worker`).
    case namespaceNotGranted = "OR007"
    /// `create_task` was given a context in which the template's concurrency key selects nothing
    /// (or null), so the task could not be counted under any key.
    case concurrencyKeyMissing = "OR010"
    /// `create_task` was given a template with a `workflow:` step that names a template which is
    /// not registered (docs/templates.md, "Sub-workflows").
    case workflowTemplateMissing = "OR017"
    /// `create_task` was given a `p_parent_step` that is not a workflow step waiting to start its
    /// child task (only the database's own start_subworkflows passes one).
    case parentStepInvalid = "OR018"
    /// `maintain_history_partitions` or `create_history_partition` was given an argument out of
    /// range (a table that is not history, a week that does not start on Monday 00:00 UTC).
    case historyPartitionArgument = "OR021"
    /// `create_task`, `create_task_by_name` or `create_tasks` was given a traceparent that is not a
    /// W3C trace context (docs/tracing.md).
    case traceparentInvalid = "OR025"
}
