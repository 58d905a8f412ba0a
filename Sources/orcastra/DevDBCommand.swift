import ArgumentParser
import Foundation
import OrcastraDevDB
import OrcastraCommandLine

struct DevDBCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev-db",
        abstract: "Manage the local development PostgreSQL.",
        discussion: """
            The development database lives in ./.orcastra/postgres (or ORCASTRA_DEV_DB_DIR), runs \
            from the system's PostgreSQL binaries on 127.0.0.1 and a unix socket, and is used by \
            every command when no database is configured. As root, the server runs as the \
            'postgres' user.

            Examples:
              orcastra dev-db start
              psql "$(orcastra dev-db url)"
              orcastra dev-db stop
            """,
        subcommands: [Start.self, Stop.self, Status.self, URLCommand.self, Destroy.self]
    )

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create (first time) and start the development database.")
        func run() async throws {
            let cluster = try DevDatabase.cluster()
            let url = try await cluster.start()
            print("Running: \(url)")
        }
    }

    struct Stop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop the development database (its data stays).")
        func run() async throws {
            let cluster = try DevDatabase.cluster()
            guard try cluster.status() != nil else {
                print("Not running.")
                return
            }
            try await cluster.stop()
            print("Stopped.")
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Say whether the development database runs, and where.")
        func run() async throws {
            let cluster = try DevDatabase.cluster()
            if let running = try cluster.status() {
                print("Running (pid \(running.pid), port \(running.port)) in \(cluster.dataDirectory.path)")
                print(running.url)
            } else if cluster.isInitialized {
                print("Stopped. Data in \(cluster.dataDirectory.path); start it with `orcastra dev-db start`.")
            } else {
                print("Not created yet; `orcastra dev-db start` creates it in \(cluster.dataDirectory.path).")
            }
        }
    }

    struct URLCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "url", abstract: "Print the connection URL (starting the database if needed).")
        func run() async throws {
            print(try await DevDatabase.cluster().start())
        }
    }

    struct Destroy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop the development database and delete its data.")
        @Flag(help: "Confirm that the data may be deleted.")
        var yes = false
        func run() async throws {
            guard yes else {
                throw CLIFailure(message: "This deletes \(DevDatabase.directory.path). Run again with --yes to confirm.", exitCode: .usage)
            }
            try await DevDatabase.cluster().destroy()
            print("Deleted \(DevDatabase.directory.path).")
        }
    }
}
