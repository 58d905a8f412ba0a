import Foundation
import OrcastraTemplates

/// The Swift handlers a worker can run, by name.
public struct HandlerRegistry: Sendable {
    typealias Erased = @Sendable (JSONValue, StepContext) async throws -> JSONValue
    typealias ErasedTransactional = @Sendable (JSONValue, StepContext, StepTransaction) async throws -> JSONValue

    enum Registered: Sendable {
        case plain(Erased)
        /// Runs inside the step's transaction (`TransactionalStepHandler`).
        case transactional(ErasedTransactional)
    }

    private(set) var handlers: [String: Registered] = [:]

    public init() {}

    /// Adds a handler under its `name`; a second handler with the same name replaces the first.
    public mutating func register<Handler: StepHandler>(_ handler: Handler) {
        handlers[Handler.name] = .plain { context, step in
            let input = try Self.decode(Handler.Input.self, from: context, handler: Handler.name)
            return try JSONBridge.encode(try await handler.run(input, context: step))
        }
    }

    /// Adds a handler whose writes commit together with the step's completion; a second handler
    /// with the same name (of either kind) replaces the first.
    public mutating func register<Handler: TransactionalStepHandler>(_ handler: Handler) {
        handlers[Handler.name] = .transactional { context, step, transaction in
            let input = try Self.decode(Handler.Input.self, from: context, handler: Handler.name)
            return try JSONBridge.encode(try await handler.run(input, context: step, transaction: transaction))
        }
    }

    private static func decode<Input: Decodable>(_ type: Input.Type, from context: JSONValue, handler: String) throws -> Input {
        do {
            return try JSONBridge.decode(Input.self, from: context)
        } catch {
            throw StepFailure.permanent("the task context does not decode as \(Input.self) for handler \(handler): \(error)")
        }
    }

    public var names: [String] { handlers.keys.sorted() }

    /// Whether any handler runs in the step's transaction (the worker then keeps a pool for them).
    var hasTransactionalHandlers: Bool {
        handlers.values.contains { if case .transactional = $0 { true } else { false } }
    }

    func handler(named name: String) -> Registered? { handlers[name] }

    /// The handlers every stock worker has: `orcastra.noop` returns `{}`; `orcastra.echo` returns
    /// its input (`{"context": …, "parents": …}`; for an instance of a fan-out `item` and `index`,
    /// with the context and parents its step's `instance_input` passes); `orcastra.sleep` waits `sleep_ms` from the
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
        guard let item = context.item, let index = context.index else {
            return .object(["context": input, "parents": .object(context.parents)])
        }
        // An instance echoes what it received: its item and index, and the context and parents
        // only when its step's instance_input passed them.
        var echo: [String: JSONValue] = ["item": item, "index": .number(JSONNumber(index))]
        if context.receivedContext { echo["context"] = input }
        if context.receivedParents { echo["parents"] = .object(context.parents) }
        return .object(echo)
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
