import Foundation
import OrcastraDevDB
import OrcastraTesting
import Testing

/// orcastra.yaml and ORCASTRA_* under the flags of the built executables (docs/configuration.md):
/// precedence flag > env > file > default, located errors, `orcastra config show` with sources and
/// masked secrets.
@Suite(.timeLimit(.minutes(5))) struct ConfigurationCLITests {
    let orcastra = CommandLineTool("orcastra")

    /// A file in a fresh folder of its own; returns its path.
    func writeFile(_ text: String, name: String = "orcastra.yaml") throws -> String {
        let folder = NSTemporaryDirectory() + "config-cli-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let path = folder + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// `orcastra config show --json …` as { scope: { key: (value, source) } }.
    func show(_ arguments: [String], environment: [String: String] = [:]) async throws
        -> (settings: [String: [String: (value: String?, source: String)]], json: [String: Any], output: String) {
        let run = try await orcastra.run(["config", "show", "--json"] + arguments, environment: environment)
        #expect(run.status == 0, "\(run.output)")
        let json = (try? JSONSerialization.jsonObject(with: Data(run.standardOutput.utf8))) as? [String: Any] ?? [:]
        var settings: [String: [String: (value: String?, source: String)]] = [:]
        for scope in json["scopes"] as? [[String: Any]] ?? [] {
            var entries: [String: (value: String?, source: String)] = [:]
            for setting in scope["settings"] as? [[String: Any]] ?? [] {
                entries[setting["key"] as? String ?? ""] = (setting["value"] as? String, setting["source"] as? String ?? "")
            }
            settings[scope["scope"] as? String ?? ""] = entries
        }
        return (settings, json, run.output)
    }

    @Test func flagBeatsEnvironmentBeatsFileBeatsDefault() async throws {
        let file = try writeFile("""
            poll-interval: 2s
            database:
              url: postgresql://app:filesecret@db.example.com/orcastra
            worker:
              namespace: from-file
              concurrency: 7
              lease: 40s
            orchestrator:
              batch-limit: 300
            """)
        let shown = try await show(["--config", file, "--", "--lease", "45s"],
                                   environment: ["ORCASTRA_CONCURRENCY": "9", "ORCASTRA_DATABASE_URL": ""])
        let worker = try #require(shown.settings["worker"], "\(shown.output)")
        #expect(worker["lease"]?.value == "45s")
        #expect(worker["lease"]?.source == "flag")
        #expect(worker["concurrency"]?.value == "9")
        #expect(worker["concurrency"]?.source == "env:ORCASTRA_CONCURRENCY")
        #expect(worker["namespace"]?.value == "from-file")
        #expect(worker["namespace"]?.source == "file:\(file):5")
        #expect(worker["poll-interval"]?.source == "file:\(file):1", "a top-level key applies to every scope")
        #expect(worker["claim-batch"]?.value == "10")
        #expect(worker["claim-batch"]?.source == "default")
        #expect(worker["grace-period"]?.value == "30s", "a default named in the help text")
        #expect(worker["worker-id"]?.source == "default", "described by the help text: host-pid-random")
        let orchestrator = try #require(shown.settings["orchestrator"])
        #expect(orchestrator["batch-limit"]?.value == "300")
        #expect(orchestrator["concurrency"] == nil, "a worker key is not an orchestrator setting")
        #expect(orchestrator["lease"] == nil)
        #expect(orchestrator["http-body-limit"]?.source == "default")
        #expect(orchestrator["http-address"]?.source == "unset")
        #expect(orchestrator["http-address"]?.value == nil)
        // The password is masked everywhere it is shown.
        #expect(shown.settings["cli"]?["database-url"]?.value == "postgresql://app:****@db.example.com/orcastra")
        #expect(shown.settings["cli"]?["database-url"]?.source == "file:\(file):3")
        #expect(!shown.output.contains("filesecret"))
        #expect((shown.json["file"] as? [String: Any])?["foundBy"] as? String == "--config")
    }

    /// The history partitions' settings (docs/retention.md, "Partitions ahead") are orchestrator
    /// settings like any other: file, environment, default, each shown with its source.
    @Test func historyPartitionSettingsAreShownWithTheirSources() async throws {
        let file = try writeFile("""
            orchestrator:
              history-weeks-ahead: 8
            """)
        let shown = try await show(["--config", file], environment: ["ORCASTRA_HISTORY_MAINTENANCE_INTERVAL": "30m"])
        let orchestrator = try #require(shown.settings["orchestrator"], "\(shown.output)")
        #expect(orchestrator["history-weeks-ahead"]?.value == "8")
        #expect(orchestrator["history-weeks-ahead"]?.source == "file:\(file):2")
        #expect(orchestrator["history-maintenance-interval"]?.value == "30m")
        #expect(orchestrator["history-maintenance-interval"]?.source == "env:ORCASTRA_HISTORY_MAINTENANCE_INTERVAL")
        let defaults = try await show(["--config", try writeFile("orchestrator:\n  batch-limit: 300\n")])
        #expect(defaults.settings["orchestrator"]?["history-weeks-ahead"]?.value == "4")
        #expect(defaults.settings["orchestrator"]?["history-weeks-ahead"]?.source == "default")
        #expect(defaults.settings["orchestrator"]?["history-maintenance-interval"]?.value == "10m")
    }

    @Test func theWorkerRunsWithTheFilesAndTheEnvironmentsSettings() async throws {
        let cluster = try await ProcessCluster()
        defer { Task { await cluster.shutdown() } }
        // The database comes from the environment (ProcessCluster), the rest from the file and env.
        let file = try writeFile("""
            worker:
              namespace: configured
              concurrency: 3
              poll-interval: 200ms
            """)
        let worker = try BackgroundProcess(CommandLineTool("orcastra-worker").path, [],
                                           environment: ["ORCASTRA_DATABASE_URL": cluster.url, "ORCASTRA_CONFIG": file,
                                                         "ORCASTRA_WORKER_ID": "from-env"],
                                           logPath: file + ".log")
        defer { Task { await worker.stop() } }
        let list = { () async throws -> [[String: Any]] in
            let run = try await orcastra.run(["worker", "list", "--json", "--database-url", cluster.url])
            let json = (try? JSONSerialization.jsonObject(with: Data(run.standardOutput.utf8))) as? [String: Any]
            return json?["workers"] as? [[String: Any]] ?? []
        }
        #expect(await waitUntil(within: .seconds(20)) { try await list().count == 1 }, "\(worker.log)")
        let row = try #require(try await list().first)
        #expect(row["namespace"] as? String == "configured")
        #expect((row["concurrency"] as? NSNumber)?.intValue == 3)
        #expect(row["id"] as? String == "from-env")
        worker.send(SIGTERM)
        #expect(await worker.wait(timeout: .seconds(20)) == 0, "\(worker.log)")
    }

    @Test func aBadValueInTheFileIsReportedAtItsLineByTheExecutable() async throws {
        let file = try writeFile("""
            log-level: info
            worker:
              namespace: billing
              concurrency: 0
            """)
        let run = try await CommandLineTool("orcastra-worker").run(["--config", file])
        #expect(run.status == 64, "\(run.output)")
        #expect(run.standardError.contains("\(file):4 (worker.concurrency)"), "\(run.output)")
        #expect(run.standardError.contains("--concurrency must be at least 1"), "\(run.output)")
        // The flag overrides the file's value, so the same file works with it.
        let help = try await CommandLineTool("orcastra-worker").run(["--config", file, "--help"])
        #expect(help.status == 0)
        #expect(help.standardOutput.contains("--config <file>"))
    }

    @Test func aWrongValueInAVariableNamesTheVariable() async throws {
        let run = try await CommandLineTool("orcastra-orchestrator").run([], environment: ["ORCASTRA_HTTP_BODY_LIMIT": "lots", "ORCASTRA_CONFIG": ""])
        #expect(run.status == 64, "\(run.output)")
        #expect(run.standardError.hasPrefix("error: ORCASTRA_HTTP_BODY_LIMIT: "), "\(run.output)")
        #expect(run.standardError.contains("'lots'"), "\(run.output)")
    }

    @Test func unknownKeysAndWrongTypesAreErrorsWithLinesAndSuggestions() async throws {
        let file = try writeFile("""
            database:
              url: postgresql://db/orcastra
            worker:
              concurency: 5
              lease: [30s]
            orchestrator:
              batch-limit: many
            polling-interval: 1s
            """)
        for executable in ["orcastra-worker", "orcastra-orchestrator"] {
            let run = try await CommandLineTool(executable).run(["--config", file])
            #expect(run.status == 78, "\(executable): \(run.output)")
            let lines = run.standardError.split(separator: "\n").map(String.init)
            #expect(lines == [
                "error: \(file):4: worker.concurency: unknown key 'concurency'; did you mean 'concurrency'?",
                "error: \(file):5: worker.lease: --lease takes one value, got a list",
                "error: \(file):7: orchestrator.batch-limit: --batch-limit takes a whole number (default 1000), got the text 'many'",
                "error: \(file):8: polling-interval: unknown key 'polling-interval'; did you mean 'poll-interval'?",
            ], "\(executable): \(run.output)")
        }
        let syntax = try writeFile("worker:\n  namespace: [unclosed\n")
        let run = try await orcastra.run(["config", "show", "--config", syntax])
        #expect(run.status == 78)
        #expect(run.standardError.contains("\(syntax):"), "\(run.output)")
        #expect(run.standardError.contains("YAML syntax error"), "\(run.output)")
        let missing = try await orcastra.run(["config", "show", "--config", "/nonexistent/orcastra.yaml"])
        #expect(missing.status == 78)
        #expect(missing.standardError.hasPrefix("error: /nonexistent/orcastra.yaml: cannot read the configuration file"), "\(missing.output)")
    }

    @Test func theFileIsFoundByVariableOrInTheCurrentFolder() async throws {
        let file = try writeFile("worker:\n  concurrency: 12\n")
        let byVariable = try await show(["--for", "worker"], environment: ["ORCASTRA_CONFIG": file])
        #expect(byVariable.settings["worker"]?["concurrency"]?.value == "12")
        #expect((byVariable.json["file"] as? [String: Any])?["foundBy"] as? String == "ORCASTRA_CONFIG")

        let folder = URL(fileURLWithPath: file).deletingLastPathComponent().path
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "ORCASTRA_CONFIG")
        let run = try ProcessRunner.run("/bin/sh", ["-c", "cd \"$1\" && exec \"$2\" config show --json --for worker", "sh", folder, orcastra.path],
                                        environment: environment)
        #expect(run.status == 0, "\(run.standardError)")
        #expect(run.standardOutput.contains("\"foundBy\" : \"./orcastra.yaml\""), "\(run.standardOutput)")
        #expect(run.standardOutput.contains("\"source\" : \"file:orcastra.yaml:2\""), "\(run.standardOutput)")
    }

    @Test func secretsAreMaskedAndOldVariablesStillWork() async throws {
        let conninfo = try await show(["--for", "cli"], environment: ["ORCASTRA_DATABASE_URL": "host=db.example.com password='s3 cret' dbname=orcastra"])
        #expect(conninfo.settings["cli"]?["database-url"]?.value == "host=db.example.com password=**** dbname=orcastra", "\(conninfo.output)")
        #expect(conninfo.settings["cli"]?["database-url"]?.source == "env:ORCASTRA_DATABASE_URL")
        let legacy = try await show(["--for", "cli"], environment: ["ORCASTRA_DATABASE_URL": "", "DATABASE_URL": "postgresql://u:pw@h/db?password=other"])
        #expect(legacy.settings["cli"]?["database-url"]?.value == "postgresql://u:****@h/db?password=****", "\(legacy.output)")
        #expect(legacy.settings["cli"]?["database-url"]?.source == "env:DATABASE_URL")
        #expect(!legacy.output.contains("pw@") && !legacy.output.contains("other"))
        let text = try await orcastra.run(["config", "show", "--for", "cli"], environment: ["ORCASTRA_DATABASE_URL": "postgresql://u:hunter2@h/db"])
        #expect(text.standardOutput.contains("postgresql://u:****@h/db"), "\(text.output)")
        #expect(!text.standardOutput.contains("hunter2"))
    }
}
