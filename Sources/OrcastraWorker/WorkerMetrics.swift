import OrcastraMetrics
import OrcastraStateMachines
import OrcastraTemplates

/// What a worker counts (docs/metrics.md), derived from what its claims and reports already
/// return: no query is added. Recorded through swift-metrics, so with no backend bootstrapped
/// (`orcastra-worker` without `--metrics-address`) every call is a no-op.
struct WorkerMetrics: Sendable {
    let namespace: String

    /// A claimed attempt begins: counted once its handler is known.
    func claimed(_ step: ClaimedStep) {
        OrcastraMetric.stepsClaimed.increment(namespace, step.handlerLabel)
        OrcastraMetric.stepQueueWait.observe(seconds: step.queueWaitSeconds, namespace, step.handlerLabel)
    }

    /// An attempt ended here with an outcome to report (not one abandoned after a lost lease).
    func ran(_ step: ClaimedStep) {
        OrcastraMetric.stepRunTime.observe(ContinuousClock.now - step.claimedAt, namespace, step.handlerLabel)
    }

    func timedOut(_ step: ClaimedStep) {
        OrcastraMetric.stepsTimedOut.increment(namespace, step.handlerLabel)
    }

    /// `report_steps`' answer for one attempt.
    func reported(_ outcome: String, step: ClaimedStep) {
        switch ReportOutcome(rawValue: outcome) {
        case .completed: OrcastraMetric.stepsCompleted.increment(namespace, step.handlerLabel)
        case .waitingForRetry: OrcastraMetric.stepsFailed.increment(namespace, step.handlerLabel, "true")
        case .error: OrcastraMetric.stepsFailed.increment(namespace, step.handlerLabel, "false")
        case .ignored: OrcastraMetric.stepsCancelled.increment(namespace, step.handlerLabel)
        case .leaseLost, nil: OrcastraMetric.stepsLeaseLost.increment(namespace, step.handlerLabel)
        }
    }

    /// A report finished the step's task: its age at the claim plus the time since.
    func taskFinished(_ step: ClaimedStep, state: String) {
        OrcastraMetric.tasksFinished.increment(step.templateLabel, state)
        let since = ContinuousClock.now - step.claimedAt
        let seconds = Double(since.components.seconds) + Double(since.components.attoseconds) / 1e18
        OrcastraMetric.taskDuration.observe(seconds: step.taskAgeSeconds + seconds, step.templateLabel)
    }
}

extension StepAction {
    /// The `handler` label: the Swift handler's name, or `command` for every command step (the
    /// command line itself would make the label set unbounded).
    var metricsLabel: String {
        switch self {
        case .handler(let name): name
        case .command: "command"
        case .workflow: "workflow"
        }
    }
}
