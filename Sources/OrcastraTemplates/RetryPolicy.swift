/// How a failed step is retried.
///
/// The policy travels with the step's definition; when an attempt fails, the
/// worker computes the wait with ``delay(afterAttempt:random:)`` and reports it
/// (`report_steps`' `p_retry_after_ms`), and the database schedules the retry.
/// The function is pure (randomness is injected) so the schedule is unit-testable.
public struct RetryPolicy: Sendable, Hashable, Codable {
    /// Total attempts including the first; 1 means "never retry".
    public var maxAttempts: Int
    public var backoff: Backoff
    /// The wait before the second attempt (before jitter).
    public var initialDelay: TemplateDuration
    /// No wait is ever longer than this (before jitter).
    public var maxDelay: TemplateDuration
    /// Spread retries of many failing steps apart ("equal jitter", see ``delay(afterAttempt:random:)``).
    public var jitter: Bool

    public init(
        maxAttempts: Int = RetryPolicy.standard.maxAttempts,
        backoff: Backoff = RetryPolicy.standard.backoff,
        initialDelay: TemplateDuration = RetryPolicy.standard.initialDelay,
        maxDelay: TemplateDuration = RetryPolicy.standard.maxDelay,
        jitter: Bool = RetryPolicy.standard.jitter
    ) {
        self.maxAttempts = maxAttempts
        self.backoff = backoff
        self.initialDelay = initialDelay
        self.maxDelay = maxDelay
        self.jitter = jitter
    }

    /// The built-in default: 3 attempts, exponential from 1 s up to 5 min, with jitter.
    public static let standard = RetryPolicy(
        maxAttempts: 3, backoff: .exponential,
        initialDelay: .seconds(1), maxDelay: .minutes(5), jitter: true
    )

    /// The wait after failed attempt number `attempt` (counting from 1)
    /// before the next one starts.
    ///
    /// - `none`: 0.
    /// - `fixed`: `initial_delay` (capped at `max_delay`).
    /// - `exponential`: `min(initial_delay × 2^(attempt−1), max_delay)`.
    ///
    /// With `jitter`, the result is **equal jitter**: `base/2 + random × base/2`.
    /// Half the delay is kept so a retry never fires immediately (a flaky
    /// dependency gets at least half the intended rest) while the other half
    /// spreads a burst of failures apart.
    ///
    /// - Parameter random: a number in `[0, 1)`; values outside are clamped.
    public func delay(afterAttempt attempt: Int, random: Double) -> TemplateDuration {
        let base: Int64
        switch backoff {
        case .none:
            return .zero
        case .fixed:
            base = min(initialDelay.milliseconds, maxDelay.milliseconds)
        case .exponential:
            let exponent = max(0, attempt - 1)
            // 2^62 would overflow once multiplied; anything that large is capped anyway.
            if exponent >= 62 {
                base = maxDelay.milliseconds
            } else {
                let (product, overflow) = initialDelay.milliseconds.multipliedReportingOverflow(by: Int64(1) << exponent)
                base = overflow ? maxDelay.milliseconds : min(product, maxDelay.milliseconds)
            }
        }
        guard jitter, base > 0 else { return .init(milliseconds: base) }
        let r = min(max(random, 0), 1)
        let half = Double(base) / 2
        let value = half + r * half
        return .init(milliseconds: min(base, Int64(value.rounded(.down))))
    }

    enum CodingKeys: String, CodingKey {
        case maxAttempts = "max_attempts"
        case backoff
        case initialDelay = "initial_delay_ms"
        case maxDelay = "max_delay_ms"
        case jitter
    }
}

/// How the wait between attempts grows.
public enum Backoff: String, Sendable, Hashable, Codable, CaseIterable {
    /// Doubles after every failure, up to `max_delay`.
    case exponential
    /// Always `initial_delay`.
    case fixed
    /// Retry immediately.
    case none
}
