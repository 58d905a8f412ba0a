import Foundation
import OrcastraTemplates

/// The Swift handlers a worker can run, by name.
public struct HandlerRegistry: Sendable {
    typealias Erased = @Sendable (JSONValue, StepContext) async throws -> JSONValue
    private(set) var handlers: [String: Erased] = [:]

    public init() {}

    /// Adds a handler under its `name`; a second handler with the same name replaces the first.
    public mutating func register<Handler: StepHandler>(_ handler: Handler) {
        handlers[Handler.name] = { context, step in
            let input: Handler.Input
            do {
                input = try JSONBridge.decode(Handler.Input.self, from: context)
            } catch {
                throw StepFailure.permanent("the task context does not decode as \(Handler.Input.self) for handler \(Handler.name): \(error)")
            }
            return try JSONBridge.encode(try await handler.run(input, context: step))
        }
    }

    public var names: [String] { handlers.keys.sorted() }

    func handler(named name: String) -> Erased? { handlers[name] }

    /// The handlers every stock worker has: `orcastra.noop` returns `{}`; `orcastra.echo` returns
    /// its input (`{"context": …, "parents": …}`); `orcastra.sleep` waits `sleep_ms` from the
    /// context (default 1000) and returns `{"slept_ms": …}` — handy for trying templates out.
    public static var builtIn: HandlerRegistry {
        var registry = HandlerRegistry()
        registry.register(NoopHandler())
        registry.register(EchoHandler())
        registry.register(SleepHandler())
        return registry
    }
}

struct NoopHandler: StepHandler {
    static let name = "orcastra.noop"
    func run(_ input: JSONValue, context: StepContext) async throws -> JSONValue { .object([:]) }
}

struct EchoHandler: StepHandler {
    static let name = "orcastra.echo"
    func run(_ input: JSONValue, context: StepContext) async throws -> JSONValue {
        .object(["context": input, "parents": .object(context.parents)])
    }
}

struct SleepHandler: StepHandler {
    static let name = "orcastra.sleep"
    func run(_ input: JSONValue, context: StepContext) async throws -> JSONValue {
        var milliseconds: Int64 = 1000
        if case .object(let fields) = input {
            switch fields["sleep_ms"] {
            case .number(let value)?: milliseconds = value.int64Value ?? Int64(value.doubleValue)
            default: break
            }
        }
        try await Task.sleep(for: .milliseconds(max(0, milliseconds)))
        return .object(["slept_ms": .integer(milliseconds)])
    }
}
