/// Sizes the store refuses, so one submission cannot bloat the hot tables (docs/limits.md).
public enum StoreLimits {
    /// The largest task context accepted, in bytes of its JSON text (compact, as stored): 1 MiB.
    ///
    /// The context is copied to every step's input when a worker claims it, so a large context costs
    /// once per step, not once per task. Keep bulk data elsewhere and pass a reference to it.
    public static let maximumContextBytes = 1 << 20
}
