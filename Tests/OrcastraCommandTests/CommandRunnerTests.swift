import Testing

/// One serialized parent suite: the timing, fd-count and process-table checks below must not race
/// each other. Its nested suites live in the other files of this target.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct CommandRunnerTests {}
