import ArgumentParser
import OrcastraConfiguration
import Testing

// Option groups of the kinds a later flag may have (a Bool flag, an inversion, a repeated option,
// a custom name): the layers must handle them without code of their own.
struct SampleShared: ParsableArguments {
    @Option(name: .customLong("database-url")) var databaseURL: String?
}

struct SampleServer: ParsableArguments {
    @Option(help: "How often. (default: 1s)") var pollInterval: String = "1s"
    @Option var batchLimit = 1000
    @Flag var metrics = false
    @Flag(inversion: .prefixedNo) var colour = true
    @Option var tag: [String] = []
    @Option(name: [.customLong("api-token")]) var apiToken: String?
    @OptionGroup var shared: SampleShared
}

struct SampleWorker: ParsableArguments {
    @Option var namespace: String
    @Option var concurrency = 10
    @OptionGroup var shared: SampleShared
}

struct SampleCommand: ParsableCommand {
    @OptionGroup var server: SampleServer
    @Argument var rest: [String] = []
}

@Suite(.timeLimit(.minutes(5))) struct ConfigurationLayerTests {
    let universe = ConfigurationUniverse(shared: [SampleShared.self],
                                         scopes: [(name: "server", types: [SampleServer.self]),
                                                  (name: "worker", types: [SampleWorker.self])])

    func parse(_ yaml: String) throws(ConfigurationIssues) -> ConfigurationFile {
        try ConfigurationFile.parse(yaml, path: "o.yaml", universe: universe)
    }

    func resolve(_ arguments: [String], environment: [String: String] = [:], file: ConfigurationFile? = nil) throws -> Resolution {
        try SettingResolver.resolve(options: universe.options(inScope: "server"), arguments: arguments,
                                    environment: environment, file: file, scope: "server")
    }

    @Test func theSchemaComesFromTheParser() {
        let names = universe.options(inScope: "server").map(\.name)
        #expect(names == ["poll-interval", "batch-limit", "metrics", "colour", "tag", "api-token", "database-url"])
        let server = universe.options(inScope: "server")
        #expect(server.first { $0.name == "poll-interval" }?.defaultValue == "1s")
        #expect(server.first { $0.name == "batch-limit" }?.defaultValue == "1000")
        #expect(server.first { $0.name == "colour" }?.inversion == "no-colour")
        #expect(server.first { $0.name == "colour" }?.spellings == ["--colour", "--no-colour"])
        #expect(server.first { $0.name == "tag" }?.isRepeating == true)
        #expect(server.first { $0.name == "api-token" }?.environmentVariable == "ORCASTRA_API_TOKEN")
        #expect(universe.options(inScope: nil).map(\.name) == ["database-url"])
    }

    @Test func flagsListsAndNestedKeysFromTheFile() throws {
        let file = try parse("""
            metrics: true
            colour: false
            tag: [a, b]
            server:
              poll:
                interval: 250ms
            database: {url: "postgresql://u:p@h/db"}
            """)
        let resolution = try resolve(["run"], file: file)
        #expect(resolution.arguments == ["run", "--poll-interval=250ms", "--metrics", "--no-colour", "--tag=a", "--tag=b",
                                         "--database-url=postgresql://u:p@h/db"])
        let command = try SampleCommand.parse(Array(resolution.arguments.dropFirst()))
        #expect(command.server.metrics && !command.server.colour && command.server.tag == ["a", "b"])
        #expect(command.server.pollInterval == "250ms")
        let poll = try #require(resolution.settings.first { $0.option.name == "poll-interval" })
        #expect(poll.source == .file(path: "o.yaml", line: 6, written: "server.poll.interval"))
    }

    @Test func theCommandLineAndTheEnvironmentWin() throws {
        let file = try parse("batch-limit: 5\nmetrics: true\npoll-interval: 3s\n")
        #expect(try resolve(["--no-colour"]).settings.first { $0.option.name == "colour" }?.value == "false")
        let resolution = try resolve(["--batch-limit", "7", "--", "--poll-interval", "9s"],
                                     environment: ["ORCASTRA_METRICS": "false", "ORCASTRA_POLL_INTERVAL": "-1s", "ORCASTRA_TAG": ""],
                                     file: file)
        // After `--` nothing is a flag; the environment's value goes before it, in one word.
        #expect(resolution.arguments == ["--batch-limit", "7", "--poll-interval=-1s", "--", "--poll-interval", "9s"])
        let sources = Dictionary(uniqueKeysWithValues: resolution.settings.map { ($0.option.name, $0.source) })
        #expect(sources["batch-limit"] == .flag)
        #expect(sources["poll-interval"] == .environment(variable: "ORCASTRA_POLL_INTERVAL"))
        #expect(sources["metrics"] == .environment(variable: "ORCASTRA_METRICS"))
        #expect(sources["tag"] == .unset, "an empty variable is no value; the list has no default to show")
        #expect(resolution.origin(ofMessage: "The value '-1s' is invalid for '--poll-interval <poll-interval>'") == "ORCASTRA_POLL_INTERVAL")
        #expect(resolution.origin(ofMessage: "--batch-limit must be at least 1.") == nil, "a flag's own value needs no origin")
        #expect(throws: ConfigurationIssue.self) { try resolve([], environment: ["ORCASTRA_METRICS": "maybe"]) }
    }

    @Test func problemsAreReportedWithLinesAndSuggestions() {
        #expect(throws: ConfigurationIssues.self) { try parse("x") }
        do {
            _ = try parse("""
                metrcs: true
                metrics: yes please
                worker:
                  namespace: billing
                  metrics: true
                batch-limit: 5
                batch:
                  limit: 6
                tag: {a: 1}
                """)
            Issue.record("refused nothing")
        } catch {
            #expect(error.issues.map(\.description) == [
                "o.yaml:1: metrcs: unknown key 'metrcs'; did you mean 'metrics'?",
                "o.yaml:2: metrics: --metrics is a flag: write true or false, got the text 'yes please'",
                "o.yaml:5: worker.metrics: unknown key 'metrics'; keys are the long names of orcastra-worker's flags (`orcastra config show` lists them)",
                "o.yaml:8: batch.limit: sets batch-limit again (first set as batch-limit on line 6); keep one of them",
                "o.yaml:9: tag: --tag takes one value, got a mapping",
            ])
        }
    }

    @Test func secretsAreMasked() {
        #expect(SecretMasking.masked("postgresql://app:s3cret@db:5432/o", forKey: "database-url") == "postgresql://app:****@db:5432/o")
        #expect(SecretMasking.masked("postgresql://app@db/o", forKey: "database-url") == "postgresql://app@db/o")
        #expect(SecretMasking.masked("postgresql://h1,h2/o?user=a&password=x&sslmode=require", forKey: "database-url")
                == "postgresql://h1,h2/o?user=a&password=****&sslmode=require")
        #expect(SecretMasking.masked("host=db password = 'a b\\' c' user=x", forKey: "database-url") == "host=db password = **** user=x")
        #expect(SecretMasking.masked("abc", forKey: "api-token") == "****")
        #expect(SecretMasking.masked("0.0.0.0:8080", forKey: "http-address") == "0.0.0.0:8080")
    }
}
