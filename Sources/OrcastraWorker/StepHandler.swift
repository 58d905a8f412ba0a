import Foundation
import Logging
import OrcastraTemplates

/// A step handler written in Swift. Register it in a `HandlerRegistry` under `name`, and reference
/// that name from a template step (`handler: orders.charge_card`).
///
/// `Input` is decoded from the task's context; parents' results are read through
/// `StepContext.parentResult(_:as:)`. The returned `Output` becomes the step's result, visible to
/// its children. Throw `StepFailure.permanent` for a failure that retrying cannot fix; any other
/// error fails the attempt and the step is retried by its policy.
public protocol StepHandler: Sendable {
    associatedtype Input: Decodable & Sendable
    associatedtype Output: Encodable & Sendable
    static var name: String { get }
    func run(_ input: Input, context: StepContext) async throws -> Output
}

/// What a handler knows about the step it runs.
public struct StepContext: Sendable {
    public let taskID: UUID
    /// The step's row id (`orcastra.steps.id`): the same in every attempt of the step.
    public let stepID: Int64
    public let stepName: String
    /// 1 for the first attempt.
    public let attempt: Int
    public let maxAttempts: Int
    /// The task's context as submitted. For an instance of a fan-out, null unless its step's
    /// `instance_input` lists `context` (docs/templates.md, "Fan-out").
    public let taskContext: JSONValue
    /// Results of the step's parents, by step name. For an instance of a fan-out, its fan-out
    /// step's parents when `instance_input` lists `parents`, else empty.
    public let parents: [String: JSONValue]
    /// For an instance of a fan-out (`for_each`): its item; nil for other steps.
    public let item: JSONValue?
    /// For an instance of a fan-out: its item's index in the list (from 0); nil for other steps.
    public let index: Int?
    /// A logger with the task and step ids attached.
    public let logger: Logger
    /// Set once the worker shuts down.
    let shutdown: ShutdownFlag
    /// The W3C `traceparent` of this attempt (docs/tracing.md): its span's when the worker traces,
    /// else the one the task was submitted under; nil for tasks made before tracing existed. Pass
    /// it on to continue the trace (command steps get it as `TRACEPARENT`).
    public var traceparent: String? = nil
    /// False for an instance of a fan-out that was not passed the context / the parents.
    var receivedContext = true
    var receivedParents = true

    /// A key that names this step of this task, the same in every attempt (and on every worker):
    /// `<task id>/<step name>`. Pass it to an external API that deduplicates requests (an
    /// `Idempotency-Key` header), so that an attempt that ran again after a crash does not charge,
    /// mail or post twice. Command steps get it as `ORCASTRA_IDEMPOTENCY_KEY`. See
    /// docs/transactions.md.
    public var idempotencyKey: String { Self.idempotencyKey(taskID: taskID, stepName: stepName) }

    static func idempotencyKey(taskID: UUID, stepName: String) -> String {
        "\(taskID.uuidString.lowercased())/\(stepName)"
    }

    /// Decodes a parent's result.
    public func parentResult<Value: Decodable>(_ step: String, as type: Value.Type = Value.self) throws -> Value {
        guard let value = parents[step] else {
            throw StepFailure.permanent("step \(stepName) has no parent named \(step); its parents are \(parents.keys.sorted().joined(separator: ", "))")
        }
        return try JSONBridge.decode(Value.self, from: value)
    }

    /// True once the step should stop: its task was cancelled, its lease was lost, its timeout
    /// passed, or the worker is shutting down (from the first SIGTERM on, through the grace period).
    /// A handler that returns early while the worker shuts down may throw `StepFailure.retryable`:
    /// the step then runs again on another worker.
    public var isCancelled: Bool { Task.isCancelled || shutdown.isSet }

    /// True while the worker shuts down gracefully (see `isCancelled`).
    public var isShuttingDown: Bool { shutdown.isSet }
}

/// How a handler says an attempt failed.
public enum StepFailure: Error, Sendable, CustomStringConvertible {
    /// Retrying cannot help (bad input, a refused payment): the step goes to error at once.
    case permanent(String)
    /// Worth another attempt, after the step's backoff.
    case retryable(String)

    public var description: String {
        switch self {
        case .permanent(let message), .retryable(let message): message
        }
    }
}

/// Codable values ↔ `JSONValue`, through JSON text.
enum JSONBridge {
    static func decode<Value: Decodable>(_ type: Value.Type, from value: JSONValue) throws -> Value {
        try JSONDecoder().decode(Value.self, from: Data(value.jsonText.utf8))
    }

    static func encode<Value: Encodable>(_ value: Value) throws -> JSONValue {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            return try JSONValue(parsing: String(decoding: try encoder.encode(value), as: UTF8.self))
        } catch let error as JSONValueParseError where error.isTooDeep {
            // The same output again will be just as deep: retrying cannot help.
            throw StepFailure.permanent("result not storable: the handler's output is \(error)")
        }
    }
}
