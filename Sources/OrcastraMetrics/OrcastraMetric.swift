/// Every metric Orcastra records (docs/metrics.md lists them with the same texts).
public enum OrcastraMetric {
    /// Step latencies: from a millisecond to ten minutes.
    public static let stepBuckets: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600]
    /// Task durations and queue waits: from ten milliseconds to a day.
    public static let longBuckets: [Double] = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14_400, 86_400]
    /// Orchestrator chores: from 100 microseconds to ten seconds.
    public static let choreBuckets: [Double] = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10]

    // MARK: Worker: counted on the worker's own path, from what claims and reports return.

    public static let stepsClaimed = MetricDefinition(
        "orcastra_steps_claimed_total", .counter, labels: ["namespace", "handler"],
        help: "Step attempts claimed by this worker.")
    public static let stepsCompleted = MetricDefinition(
        "orcastra_steps_completed_total", .counter, labels: ["namespace", "handler"],
        help: "Step attempts this worker completed (report_steps answered completed).")
    public static let stepsFailed = MetricDefinition(
        "orcastra_steps_failed_total", .counter, labels: ["namespace", "handler", "retryable"],
        help: "Step attempts this worker reported failed: retryable=\"true\" when the step waits for a retry, \"false\" when it ended in error.")
    public static let stepsLeaseLost = MetricDefinition(
        "orcastra_steps_lease_lost_total", .counter, labels: ["namespace", "handler"],
        help: "Step attempts whose lease this worker lost before reporting (the step may run elsewhere).")
    public static let stepsTimedOut = MetricDefinition(
        "orcastra_steps_timed_out_total", .counter, labels: ["namespace", "handler"],
        help: "Step attempts stopped by their timeout (also counted as failed).")
    public static let stepsCancelled = MetricDefinition(
        "orcastra_steps_cancelled_total", .counter, labels: ["namespace", "handler"],
        help: "Step attempts whose outcome was ignored because their task was cancelled while they ran.")
    public static let stepRunTime = MetricDefinition(
        "orcastra_step_run_seconds", .histogram, labels: ["namespace", "handler"], buckets: stepBuckets,
        help: "Time from this worker's claim of a step attempt to its outcome (mostly its handler or command running); one observation per attempt that ended here.")
    public static let stepQueueWait = MetricDefinition(
        "orcastra_step_queue_wait_seconds", .histogram, labels: ["namespace", "handler"], buckets: longBuckets,
        help: "Time a step attempt waited enqueued before this worker claimed it (measured by the database's clock).")
    public static let tasksFinished = MetricDefinition(
        "orcastra_tasks_finished_total", .counter, labels: ["template", "state"],
        help: "Tasks this worker's reports finished, by template name and final state (complete or error).")
    public static let taskDuration = MetricDefinition(
        "orcastra_task_duration_seconds", .histogram, labels: ["template"], buckets: longBuckets,
        help: "Time from a task's creation to its end, for the tasks this worker's reports finished.")

    // MARK: Orchestrator: chores, schedules, and the queue as the database holds it.

    public static let choreDuration = MetricDefinition(
        "orcastra_chore_seconds", .histogram, labels: ["chore"], buckets: choreBuckets,
        help: "Time one run of an orchestrator chore took (one transaction).")
    public static let choreRows = MetricDefinition(
        "orcastra_chore_rows_total", .counter, labels: ["chore"],
        help: "Rows an orchestrator chore touched: tasks started, retries enqueued, leases recovered, tasks settled, workers pruned, schedules fired.")
    public static let scheduleLateness = MetricDefinition(
        "orcastra_schedule_fire_lateness_seconds", .histogram, buckets: longBuckets,
        help: "How long after its due time a schedule occurrence was fired.")
    public static let queueDepth = MetricDefinition(
        "orcastra_queue_steps", .gauge, labels: ["namespace", "state"],
        help: "Steps in a live state (enqueued, in_progress, waiting_for_retry) per namespace, as the database held them at the last refresh (at most about a second old).")
    public static let oldestEnqueued = MetricDefinition(
        "orcastra_queue_oldest_enqueued_seconds", .gauge, labels: ["namespace"],
        help: "Age of the oldest enqueued step per namespace (0 when none is enqueued).")
    public static let liveWorkers = MetricDefinition(
        "orcastra_workers_live", .gauge, labels: ["namespace"],
        help: "Workers per namespace whose last heartbeat is recent (orcastra.worker_stale_after).")

    // MARK: Every process: its database connections.

    public static let poolConnections = MetricDefinition(
        "orcastra_pool_connections", .gauge, labels: ["pool", "state"],
        help: "Connections of a connection pool: state=\"in_use\" lent out, \"idle\" open and free.")
    public static let poolWaiting = MetricDefinition(
        "orcastra_pool_waiting", .gauge, labels: ["pool"],
        help: "Callers waiting for a connection of a connection pool.")
    public static let databaseErrors = MetricDefinition(
        "orcastra_database_errors_total", .counter, labels: ["class"],
        help: "Errors from PostgreSQL by SQLSTATE class (the code's first two characters, e.g. 40 for serialization failures and deadlocks, 08 for connection errors).")

    /// All of them, in the order docs/metrics.md lists them.
    public static let all: [MetricDefinition] = [
        stepsClaimed, stepsCompleted, stepsFailed, stepsLeaseLost, stepsTimedOut, stepsCancelled, stepRunTime, stepQueueWait,
        tasksFinished, taskDuration,
        choreDuration, choreRows, scheduleLateness, queueDepth, oldestEnqueued, liveWorkers,
        poolConnections, poolWaiting, databaseErrors,
    ]

    /// The definition named `name`, if it is one of Orcastra's.
    public static func named(_ name: String) -> MetricDefinition? { byName[name] }

    private static let byName: [String: MetricDefinition] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })
}
