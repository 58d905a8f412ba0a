// swift-tools-version: 6.1
// Orcastra: a PostgreSQL-native DAG workflow orchestrator.
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "Orcastra",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "orcastra", targets: ["orcastra"]),
        .executable(name: "orcastra-orchestrator", targets: ["orcastra-orchestrator"]),
        .executable(name: "orcastra-worker", targets: ["orcastra-worker"]),
        .library(name: "OrcastraWorker", targets: ["OrcastraWorker"]),
        .library(name: "OrcastraClient", targets: ["OrcastraClient"]),
        .library(name: "OrcastraPostgres", targets: ["OrcastraPostgres"]),
        .library(name: "OrcastraTemplates", targets: ["OrcastraTemplates"]),
        .library(name: "OrcastraSchedules", targets: ["OrcastraSchedules"]),
        .library(name: "OrcastraStore", targets: ["OrcastraStore"]),
        .library(name: "OrcastraTesting", targets: ["OrcastraTesting"]),
        .library(name: "OrcastraMetrics", targets: ["OrcastraMetrics"]),
        .library(name: "OrcastraPrometheus", targets: ["OrcastraPrometheus"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/swift-openapi-hummingbird", from: "2.1.0"),
        .package(url: "https://github.com/apple/swift-openapi-runtime", from: "1.13.4"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        // gzip for `orcastra prune --archive` (zlib through the package's own small system module).
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        // OTLP/HTTP only: the default traits would also build gRPC (docs/tracing.md).
        .package(url: "https://github.com/swift-otel/swift-otel", from: "1.6.0", traits: ["OTLPHTTP"]),
        .package(url: "https://github.com/swift-otel/swift-w3c-trace-context", from: "1.0.0"),
        // The CLI's client for the HTTP API (`--api-url`): AsyncHTTPClient streams the event stream
        // as it comes on Linux too, and trusts a private CA (`--api-cacert`) through swift-nio-ssl.
        .package(url: "https://github.com/swift-server/swift-openapi-async-http-client", from: "1.5.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // The dashboard's HTML templates (docs/dashboard.md).
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
    ],
    targets: [
        // libpq, from Debian's libpq-dev.
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"]), .brew(["libpq"])]
        ),
        // Our small PostgreSQL client on top of libpq: connections on their own threads,
        // parameterized queries, typed rows, transactions, pipelines, LISTEN, a pool.
        .target(
            name: "OrcastraPostgres",
            dependencies: ["CLibPQ", "OrcastraMetrics", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        // A throwaway local PostgreSQL cluster started from the system's binaries.
        .target(
            name: "OrcastraDevDB",
            dependencies: ["OrcastraPostgres"],
            swiftSettings: strict
        ),
        // The SQL migrations' runner; the files themselves live in the top-level Migrations/.
        .target(
            name: "OrcastraMigrations",
            dependencies: ["OrcastraPostgres"],
            swiftSettings: strict
        ),
        // The YAML workflow template format: parsing, validation, the DAG, JSON values and schemas.
        .target(
            name: "OrcastraTemplates",
            dependencies: [.product(name: "Yams", package: "Yams")],
            swiftSettings: strict
        ),
        // Cron schedules without a database: the cron parser and its fire times across daylight saving
        // changes, time zone names, RFC 3339 times, and schedule files (docs/schedules.md).
        .target(
            name: "OrcastraSchedules",
            dependencies: ["OrcastraTemplates", .product(name: "Yams", package: "Yams")],
            swiftSettings: strict
        ),
        // The task and step state machines (pure tables of legal transitions, mirrored from SQL) and the
        // names and codes the SQL protocol shares with Swift (channels, outcomes, SQLSTATEs), and the
        // package's version. No dependencies.
        .target(
            name: "OrcastraStateMachines",
            swiftSettings: strict
        ),
        // The metrics Orcastra records (docs/metrics.md): their names, help texts and label sets, on
        // swift-metrics' API only, so an embedder may bring any backend.
        .target(
            name: "OrcastraMetrics",
            dependencies: [.product(name: "CoreMetrics", package: "swift-metrics")],
            swiftSettings: strict
        ),
        // The Prometheus side: a swift-metrics factory over swift-prometheus that gives each metric
        // its HELP text, and the small HTTP listener a worker serves /metrics on.
        .target(
            name: "OrcastraPrometheus",
            dependencies: ["OrcastraMetrics",
                           .product(name: "CoreMetrics", package: "swift-metrics"),
                           .product(name: "Prometheus", package: "swift-prometheus"),
                           .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
            swiftSettings: strict
        ),
        // Everything Orcastra stores in PostgreSQL: the template registry, task creation, queries.
        .target(
            name: "OrcastraStore",
            dependencies: ["OrcastraPostgres", "OrcastraTemplates", "OrcastraSchedules", "OrcastraStateMachines",
                           .product(name: "Tracing", package: "swift-distributed-tracing"),
                           .product(name: "W3CTraceContext", package: "swift-w3c-trace-context")],
            swiftSettings: strict
        ),
        // The client library: submit, watch, inspect and repair tasks (the CLI is built on it).
        .target(
            name: "OrcastraClient",
            dependencies: ["OrcastraPostgres", "OrcastraStore", "OrcastraTemplates", "OrcastraSchedules", "OrcastraStateMachines"],
            swiftSettings: strict
        ),
        // Checks that what the database holds obeys Orcastra's rules (`orcastra check`, tests).
        .target(
            name: "OrcastraInvariants",
            dependencies: ["OrcastraPostgres"],
            swiftSettings: strict
        ),
        // Runs a `command` step's process: process group, timeout, capped output, off the shared pool.
        .target(
            name: "OrcastraCommand",
            swiftSettings: strict
        ),
        // The embeddable worker runtime: claim, run handlers, heartbeat, report, shut down gracefully.
        .target(
            name: "OrcastraWorker",
            dependencies: ["OrcastraPostgres", "OrcastraTemplates", "OrcastraCommand", "OrcastraStateMachines", "OrcastraMetrics",
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "Tracing", package: "swift-distributed-tracing"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
            swiftSettings: strict
        ),
        // The orchestrator's loop: scheduled starts, due retries, lease recovery, schedules.
        .target(
            name: "OrcastraOrchestrator",
            dependencies: ["OrcastraPostgres", "OrcastraStateMachines", "OrcastraTemplates", "OrcastraSchedules", "OrcastraMetrics",
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
            swiftSettings: strict
        ),
        // The web dashboard (docs/dashboard.md): server-rendered pages, sessions, the DAG's layout and
        // SVG, mounted by OrcastraHTTP at `/` of the same server. Templates, CSS and JS are Swift
        // strings, so the binary carries them wherever it is copied.
        .target(
            name: "OrcastraDashboard",
            dependencies: ["OrcastraPostgres", "OrcastraStore", "OrcastraClient", "OrcastraTemplates", "OrcastraStateMachines",
                           "OrcastraSchedules",
                           .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "Mustache", package: "swift-mustache"),
                           .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        // The types of docs/openapi.yaml (schemas, operations' inputs and outputs, APIProtocol), generated
        // once into Generated/ by scripts/generate-openapi.sh and shared by the server and the client.
        .target(
            name: "OrcastraAPITypes",
            dependencies: ["OrcastraTemplates",
                           .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                           .product(name: "HTTPTypes", package: "swift-http-types")],
            swiftSettings: strict
        ),
        // The HTTP API (docs/api.md): the server side of docs/openapi.yaml (routing generated into
        // Generated/ by scripts/generate-openapi.sh), implemented on OrcastraClient and served by Hummingbird.
        .target(
            name: "OrcastraHTTP",
            dependencies: ["OrcastraAPITypes", "OrcastraPostgres", "OrcastraStore", "OrcastraClient", "OrcastraTemplates", "OrcastraMigrations",
                           "OrcastraStateMachines", "OrcastraSchedules", "OrcastraMetrics", "OrcastraPrometheus", "OrcastraOrchestrator",
                           "OrcastraDashboard",
                           .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "HummingbirdTLS", package: "hummingbird"),
                           .product(name: "OpenAPIHummingbird", package: "swift-openapi-hummingbird"),
                           .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                           .product(name: "HTTPTypes", package: "swift-http-types"),
                           .product(name: "Tracing", package: "swift-distributed-tracing"),
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
            swiftSettings: strict
        ),
        // orcastra.yaml and ORCASTRA_* under every executable's flags (docs/configuration.md): the keys
        // are read from swift-argument-parser's own description of each command, so no flag needs code.
        .target(
            name: "OrcastraConfiguration",
            dependencies: ["OrcastraTemplates",
                           .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "Yams", package: "Yams")],
            swiftSettings: strict
        ),
        // What the executables share: database options, durations, signals, logging, configuration scopes.
        // The CLI's way to the HTTP API (`orcastra --api-url`): the client side of docs/openapi.yaml
        // (generated into Generated/ by scripts/generate-openapi.sh), over AsyncHTTPClient,
        // answering in OrcastraClient's own values so the CLI prints the same either way.
        .target(
            name: "OrcastraAPIClient",
            dependencies: ["OrcastraAPITypes", "OrcastraClient", "OrcastraStore", "OrcastraTemplates", "OrcastraStateMachines", "OrcastraSchedules",
                           .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                           .product(name: "OpenAPIAsyncHTTPClient", package: "swift-openapi-async-http-client"),
                           .product(name: "AsyncHTTPClient", package: "async-http-client"),
                           .product(name: "NIOSSL", package: "swift-nio-ssl"),
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "HTTPTypes", package: "swift-http-types")],
            swiftSettings: strict
        ),
        .target(
            name: "OrcastraCommandLine",
            dependencies: ["OrcastraConfiguration", "OrcastraDevDB", "OrcastraTemplates", "OrcastraWorker", "OrcastraOrchestrator", "OrcastraCommand", "OrcastraStateMachines",
                           "OrcastraMetrics", "OrcastraPrometheus",
                           .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "OTel", package: "swift-otel"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                           .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "orcastra-worker",
            dependencies: ["OrcastraWorker", "OrcastraCommandLine", "OrcastraConfiguration",
                           .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "orcastra-orchestrator",
            dependencies: ["OrcastraOrchestrator", "OrcastraCommandLine", "OrcastraConfiguration", "OrcastraHTTP", "OrcastraPrometheus",
                           .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        // The benchmark command (docs/benchmarks.md).
        .executableTarget(
            name: "orcastra-bench",
            dependencies: ["OrcastraPostgres", "OrcastraDevDB", "OrcastraMigrations", "OrcastraStore", "OrcastraTemplates",
                           "OrcastraStateMachines", "OrcastraCommandLine",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strict
        ),
        // A worker with Swift handlers, as a user would write one.
        .executableTarget(
            name: "greeting-worker",
            dependencies: ["OrcastraWorker", "OrcastraCommandLine", .product(name: "Logging", package: "swift-log")],
            path: "Examples/GreetingWorker",
            exclude: ["greeting.yaml"],
            swiftSettings: strict
        ),
        // A worker whose handler writes to the same database in the step's own transaction
        // (TransactionalStepHandler), exactly once per step; `--plain` for comparison.
        .executableTarget(
            name: "ledger-worker",
            dependencies: ["OrcastraWorker", "OrcastraCommandLine", "OrcastraPostgres",
                           .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "Logging", package: "swift-log")],
            path: "Examples/LedgerWorker",
            exclude: ["ledger.yaml"],
            resources: [.copy("ledger.sql")],
            swiftSettings: strict
        ),
        // Test support, shipped so users can test against a real database too.
        .target(
            name: "OrcastraTesting",
            dependencies: ["CLibPQ", "OrcastraPostgres", "OrcastraDevDB", "OrcastraMigrations", "OrcastraStore", "OrcastraTemplates"],
            swiftSettings: strict
        ),
        // The `orcastra` command-line tool.
        .executableTarget(
            name: "orcastra",
            dependencies: [
                "OrcastraPostgres", "OrcastraDevDB", "OrcastraMigrations", "OrcastraTemplates", "OrcastraSchedules",
                "OrcastraStore", "OrcastraStateMachines", "OrcastraCommandLine", "OrcastraConfiguration", "OrcastraClient", "OrcastraInvariants", "OrcastraAPIClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "OrcastraPostgresTests",
            dependencies: ["OrcastraPostgres", "OrcastraTesting"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "OrcastraMigrationsTests",
            dependencies: ["OrcastraMigrations", "OrcastraTesting", "OrcastraPostgres"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "OrcastraTemplatesTests",
            dependencies: ["OrcastraTemplates"],
            resources: [.copy("Fixtures")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "OrcastraSchedulesTests",
            dependencies: ["OrcastraSchedules", "OrcastraTemplates"],
            exclude: ["croniter_check.py"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "OrcastraStateMachinesTests",
            dependencies: ["OrcastraStateMachines"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "OrcastraStoreTests",
            dependencies: ["OrcastraStore", "OrcastraTesting", "OrcastraPostgres", "OrcastraTemplates", "OrcastraStateMachines", "OrcastraInvariants"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "OrcastraClientTests",
            dependencies: ["OrcastraClient", "OrcastraStore", "OrcastraTesting", "OrcastraPostgres", "OrcastraTemplates"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "OrcastraEndToEndTests",
            dependencies: ["OrcastraTesting", "OrcastraPostgres", "OrcastraStore", "OrcastraTemplates", "OrcastraWorker", "OrcastraOrchestrator",
                           "OrcastraMigrations", "OrcastraClient", "OrcastraSchedules", "OrcastraInvariants"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "OrcastraReliabilityTests",
            dependencies: ["OrcastraTesting", "OrcastraPostgres", "OrcastraStore", "OrcastraTemplates", "OrcastraInvariants", "OrcastraDevDB", "OrcastraMigrations"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "OrcastraBadInputTests",
            dependencies: ["OrcastraTesting", "OrcastraPostgres", "OrcastraStore", "OrcastraTemplates", "OrcastraClient"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "OrcastraWorkerTests",
            dependencies: ["OrcastraWorker", "OrcastraTemplates"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "OrcastraCommandTests",
            dependencies: ["OrcastraCommand"],
            swiftSettings: strict
        ),
        // The HTTP API against the built orcastra-orchestrator on a real port.
        .testTarget(
            name: "OrcastraHTTPTests",
            dependencies: ["OrcastraHTTP", "OrcastraTesting", "OrcastraPostgres", "OrcastraDevDB", "OrcastraMigrations", "OrcastraDashboard",
                           .product(name: "Hummingbird", package: "hummingbird")],
            swiftSettings: strict
        ),
        // The dashboard's server side: sessions, CSRF, scopes, escaping, the DAG's layout.
        .testTarget(
            name: "OrcastraDashboardTests",
            dependencies: ["OrcastraDashboard", "OrcastraTesting", "OrcastraPostgres", "OrcastraStore", "OrcastraClient",
                           "OrcastraTemplates", "OrcastraStateMachines",
                           .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "HummingbirdTesting", package: "hummingbird")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "OrcastraConfigurationTests",
            dependencies: ["OrcastraConfiguration", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "OrcastraCLITests",
            dependencies: ["OrcastraTesting", "OrcastraPostgres", "OrcastraDevDB"],
            swiftSettings: strict
        ),
    ]
)
