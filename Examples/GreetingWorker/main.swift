// A worker of your own, with a Swift handler: the smallest useful example.
//
//   swift run greeting-worker            (uses ORCASTRA_DATABASE_URL / DATABASE_URL / PG*)
//
// Then register Examples/GreetingWorker/greeting.yaml and submit it:
//   orcastra template register Examples/GreetingWorker/greeting.yaml
//   orcastra submit greetings/hello --context '{"name": "Ada"}' --wait
import Foundation
import Logging
import OrcastraCommandLine
import OrcastraWorker

struct Hello: StepHandler {
    static let name = "greetings.hello"
    struct Input: Decodable, Sendable { var name: String }
    struct Output: Encodable, Sendable { var greeting: String }

    func run(_ input: Input, context: StepContext) async throws -> Output {
        guard !input.name.isEmpty else { throw StepFailure.permanent("name is empty: nobody to greet") }
        return Output(greeting: "Hello, \(input.name)! (attempt \(context.attempt))")
    }
}

struct Shout: StepHandler {
    static let name = "greetings.shout"
    struct Greeting: Decodable { var greeting: String }
    func run(_ input: [String: String], context: StepContext) async throws -> [String: String] {
        let hello = try context.parentResult("hello", as: Greeting.self)
        return ["shout": hello.greeting.uppercased()]
    }
}

Lifecycle.bootstrapLogging(level: nil)
var handlers = HandlerRegistry.builtIn
handlers.register(Hello())
handlers.register(Shout())
let conninfo = ProcessInfo.processInfo.environment["ORCASTRA_DATABASE_URL"]
    ?? ProcessInfo.processInfo.environment["DATABASE_URL"] ?? ""
let worker = Worker(configuration: WorkerConfiguration(conninfo: conninfo, namespace: "greetings"), handlers: handlers)
// SIGTERM: stop claiming, finish or hand back running steps; a second signal exits at once.
try await Lifecycle.runUntilSignalled([worker], logger: Logger(label: "greeting-worker"))
