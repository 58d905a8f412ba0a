import Testing

/// Every end-to-end test, one at a time: they start real processes and measure leases and
/// timeouts, which other end-to-end tests running alongside would disturb on two cores.
@Suite(.serialized, .timeLimit(.minutes(5))) struct EndToEndTests {}
