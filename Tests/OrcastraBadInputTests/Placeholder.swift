import Testing

@Suite struct BadInputPlaceholder {
    @Test func placeholder() { #expect(Bool(true)) }
}
