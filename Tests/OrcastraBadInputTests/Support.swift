import Foundation
import OrcastraPostgres
import OrcastraStore
import OrcastraTemplates
import OrcastraTesting
import Synchronization

/// Where the repository is, for its templates and fixtures.
enum Repository {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The templates the fuzzer starts from: Templates/ and the good fixtures.
    static func seedTemplates() throws -> [(name: String, text: String)] {
        var seeds: [(String, String)] = []
        for folder in ["Templates", "Tests/OrcastraTemplatesTests/Fixtures/good"] {
            let url = root.appendingPathComponent(folder)
            let files = try FileManager.default.contentsOfDirectory(atPath: url.path).filter { $0.hasSuffix(".yaml") }.sorted()
            for file in files {
                seeds.append(("\(folder)/\(file)", try String(contentsOf: url.appendingPathComponent(file), encoding: .utf8)))
            }
        }
        return seeds
    }
}

/// SplitMix64: small, fast and the same on every platform, so a seed names one exact run.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Runs `work` on its own thread and gives up waiting after `timeout`: a hang fails the test
/// instead of blocking one of the few cooperative threads forever.
func onThread<T: Sendable>(timeout: Duration, _ work: @escaping @Sendable () -> T) async -> T? {
    let finished = Mutex<Bool>(false)
    return await withCheckedContinuation { (continuation: CheckedContinuation<T?, Never>) in
        let resume: @Sendable (T?) -> Void = { value in
            let first = finished.withLock { done in
                defer { done = true }
                return !done
            }
            if first { continuation.resume(returning: value) }
        }
        let thread = Thread { resume(work()) }
        thread.stackSize = 8 << 20
        thread.start()
        Task {
            try? await Task.sleep(for: timeout)
            resume(nil)
        }
    }
}

/// Seconds since `start`, for printing.
func seconds(since start: ContinuousClock.Instant) -> String {
    let elapsed = ContinuousClock.now - start
    let value = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    return String(format: "%.3f s", value)
}

/// A fresh migrated database with a pool, a registry and a task creator.
struct BadInputDatabase {
    let url: String
    let pool: PostgresPool
    let registry: TemplateRegistry
    let creator: TaskCreator

    init() async throws {
        url = try await TestDatabases.shared.makeDatabase()
        pool = PostgresPool(conninfo: url, maximumConnections: 4)
        registry = TemplateRegistry(pool: pool)
        creator = TaskCreator(pool: pool)
    }

    @discardableResult
    func register(_ yaml: String, file: String = "bad-input.yaml") async throws -> TemplateRegistry.Registration {
        let template = try TemplateParser.parse(yaml: yaml, file: file)
        return try await registry.register(LoadedTemplate(file: file, source: yaml, template: template))
    }

    func count(_ sql: SQL) async throws -> Int {
        try await pool.query(sql).first!.decode(at: 0, as: Int.self)
    }

    /// Row counts of every table a submission writes, to prove a refusal wrote nothing.
    func writtenRows() async throws -> [Int] {
        [try await count("SELECT count(*) FROM orcastra.tasks"),
         try await count("SELECT count(*) FROM orcastra.steps"),
         try await count("SELECT count(*) FROM orcastra.step_edges"),
         try await count("SELECT count(*) FROM orcastra.task_transitions"),
         try await count("SELECT count(*) FROM orcastra.step_transitions")]
    }
}

/// A `ProcessCluster` whose processes are stopped before the test returns, even when it throws.
func withCluster(_ body: (ProcessCluster) async throws -> Void) async throws {
    let cluster = try await ProcessCluster()
    do {
        try await body(cluster)
    } catch {
        await cluster.shutdown()
        throw error
    }
    await cluster.shutdown()
}
