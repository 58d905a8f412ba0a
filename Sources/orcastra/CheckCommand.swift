import ArgumentParser
import Foundation
import OrcastraCommandLine
import OrcastraInvariants
import OrcastraPostgres

/// `orcastra check`: verifies that the database obeys Orcastra's invariants (docs/reliability.md).
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check that the stored tasks and steps obey Orcastra's invariants.",
        discussion: """
            Runs one read-only query per invariant, all in one consistent snapshot, so it is safe \
            against a live system: state logs that are legal and gapless, parents finished before \
            their children started, never two live leases on a step, one result per completed step, \
            task states that agree with their steps, and correct pending-parent counts. \
            docs/reliability.md describes each invariant.

            Exit status: 0 when every invariant holds, 1 when any is violated (each violation is \
            printed with its task, its step and one sentence), 69 when the database is unreachable.

            Examples:
              orcastra check
              orcastra check --json | jq '.violations[].message'
              orcastra check --database-url postgresql://orcastra@db.internal/orcastra
            """
    )

    @OptionGroup var database: DatabaseOptions

    @Flag(help: "Print JSON for scripts: {invariants, tasks, steps, violations: [{invariant, task_id, step_id, step_name, message}]}.")
    var json = false

    @Option(help: ArgumentHelp("Report at most this many violations of each invariant.", valueName: "n"))
    var limit = 1000

    func validate() throws {
        guard limit > 0 else { throw ValidationError("--limit must be at least 1.") }
    }

    func run() async throws {
        let connection = try await PostgresConnection.connect(try await database.conninfo())
        let report: InvariantReport
        do {
            report = try await InvariantChecker(maximumPerInvariant: limit).report(on: connection)
            await connection.close()
        } catch {
            await connection.close()
            throw error
        }
        if json {
            try CLI.printJSON(report)
        } else if report.holds {
            print("All \(report.invariants) invariants hold over \(report.tasks) tasks and \(report.steps) steps.")
        } else {
            for violation in report.violations { print(violation) }
            let broken = Set(report.violations.map(\.invariant)).count
            print("\(CLI.count(report.violations.count, "violation", "violations")) of \(broken) of \(report.invariants) invariants over \(CLI.count(report.tasks, "task", "tasks")) and \(CLI.count(report.steps, "step", "steps")).")
        }
        if !report.holds { throw ArgumentParser.ExitCode(rawValue: 1) }
    }
}
