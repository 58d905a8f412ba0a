import ArgumentParser
import Foundation
import OrcastraClient
import OrcastraCommandLine

/// `orcastra roles …`: the least-privilege database roles (docs/security.md).
struct RolesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "roles",
        abstract: "Set up least-privilege database roles and grant workers their namespaces.",
        discussion: """
            Five group roles: orcastra_admin (owns everything; migrate, templates, operator \
            actions), orcastra_worker (the worker-protocol functions only, for namespaces granted \
            one by one), orcastra_submitter (create, read and cancel tasks), orcastra_reader \
            (read only) and orcastra_orchestrator (the time-driven chores and schedules). Roles are \
            shared by every database of the PostgreSQL cluster; `roles setup` applies their \
            privileges to one database and is safe to run again. See docs/security.md.

            Examples:
              orcastra roles setup
              psql -c "CREATE ROLE billing_worker LOGIN PASSWORD '…'"
              orcastra roles grant-worker billing_worker --namespace billing
              psql -c "GRANT orcastra_submitter TO shop_app"
              orcastra roles show --json
            """,
        subcommands: [RolesSetupCommand.self, RolesGrantWorkerCommand.self, RolesRevokeWorkerCommand.self, RolesShowCommand.self]
    )
}

struct RolesSetupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "setup",
        abstract: "Create the group roles (if missing) and apply their privileges to this database.",
        discussion: """
            Needs a superuser, or a role with CREATEROLE that owns the orcastra schema. Makes \
            orcastra_admin the owner of the schema and of everything in it (a non-superuser who \
            runs it becomes a member of orcastra_admin), revokes EXECUTE from PUBLIC on every \
            Orcastra function and grants each role exactly its privileges. Idempotent: run it \
            again after an upgrade, or on another database of the same cluster.
            """
    )

    @Flag(help: "Print JSON for scripts: {\"created\": [...], \"existing\": [...], \"applied\": [...]}.")
    var json = false

    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        let setup = try await CLI.withClient(database) { client in
            try await RoleAdministration(pool: client.pool).setup()
        }
        if json { return try CLI.printJSON(setup) }
        if !setup.created.isEmpty { print("Created roles: \(setup.created.joined(separator: ", ")).") }
        if !setup.existing.isEmpty { print("Already in the cluster: \(setup.existing.joined(separator: ", ")).") }
        print("Privileges applied to this database; orcastra_admin owns the orcastra schema.")
        print("Next: `orcastra roles grant-worker LOGIN --namespace NS` for each worker login; GRANT orcastra_submitter, orcastra_reader or orcastra_orchestrator TO other logins.")
    }
}

struct RolesGrantWorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grant-worker",
        abstract: "Let a login role work the given namespaces (and nothing else).",
        discussion: """
            Makes LOGIN a member of orcastra_worker and records each namespace for it. Its \
            claims, registrations and template reads for any other namespace are refused \
            (SQLSTATE OR007). The role must exist: CREATE ROLE name LOGIN PASSWORD '…'.

            Examples:
              orcastra roles grant-worker billing_worker --namespace billing
              orcastra roles grant-worker etl --namespace extract --namespace load
            """
    )

    @Argument(help: ArgumentHelp("The login role (it must exist in the cluster).", valueName: "login"))
    var login: String

    @Option(name: .customLong("namespace"), help: ArgumentHelp("A namespace it may work; repeat for several.", valueName: "namespace"))
    var namespaces: [String] = []

    @Flag(help: "Print JSON for scripts: {\"role\": ..., \"granted\": [...], \"already\": [...]}.")
    var json = false

    @OptionGroup var database: DatabaseOptions

    func validate() throws {
        if namespaces.isEmpty { throw ValidationError("Give at least one --namespace NS: the namespaces \(login) may work.") }
        for namespace in namespaces { try CLI.validateNamespaceOption(namespace) }
    }

    func run() async throws {
        let (login, namespaces) = (login, namespaces)
        let granted = try await CLI.withClient(database) { client in
            try await RoleAdministration(pool: client.pool).grantWorker(login, namespaces: namespaces)
        }
        let already = namespaces.filter { !granted.contains($0) }
        if json { return try CLI.printJSON(Granted(role: login, granted: granted, already: already)) }
        if !granted.isEmpty { print("\(login) may now work \(CLI.count(granted.count, "namespace", "namespaces")): \(granted.joined(separator: ", ")).") }
        if !already.isEmpty { print("\(login) was already granted: \(already.joined(separator: ", ")).") }
    }

    struct Granted: Encodable {
        var role: String
        var granted: [String]
        var already: [String]
    }
}

struct RolesRevokeWorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke-worker",
        abstract: "Take namespaces away from a worker login (all of them, and the worker role, without --namespace).",
        discussion: """
            Takes effect at the login's next claim: steps it holds keep their leases until they \
            end or expire. To cut a compromised worker off at once, also terminate its sessions \
            (docs/security.md, "Rotating credentials").

            Examples:
              orcastra roles revoke-worker etl --namespace load
              orcastra roles revoke-worker billing_worker
            """
    )

    @Argument(help: ArgumentHelp("The login role.", valueName: "login"))
    var login: String

    @Option(name: .customLong("namespace"), help: ArgumentHelp("A namespace to revoke; repeat for several. Without it: every namespace.", valueName: "namespace"))
    var namespaces: [String] = []

    @Flag(help: "Print JSON for scripts: {\"role\": ..., \"revoked\": [...]}.")
    var json = false

    @OptionGroup var database: DatabaseOptions

    func validate() throws {
        for namespace in namespaces { try CLI.validateNamespaceOption(namespace) }
    }

    func run() async throws {
        let (login, namespaces) = (login, namespaces)
        let revoked = try await CLI.withClient(database) { client in
            try await RoleAdministration(pool: client.pool).revokeWorker(login, namespaces: namespaces.isEmpty ? nil : namespaces)
        }
        if json { return try CLI.printJSON(Revoked(role: login, revoked: revoked)) }
        if revoked.isEmpty {
            print("\(login) had no \(namespaces.isEmpty ? "namespace grants" : "grant for \(namespaces.joined(separator: ", "))").")
        } else {
            print("\(login) may no longer work: \(revoked.joined(separator: ", ")).")
        }
        if namespaces.isEmpty { print("\(login) is no longer a member of orcastra_worker.") }
    }

    struct Revoked: Encodable {
        var role: String
        var revoked: [String]
    }
}

struct RolesShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show the group roles, their members, and which login may work which namespace."
    )

    @Flag(help: "Print JSON for scripts: {\"set_up\": bool, \"roles\": [...], \"grants\": [...]}.")
    var json = false

    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        let overview = try await CLI.withClient(database) { client in
            try await RoleAdministration(pool: client.pool).overview()
        }
        if json { return try CLI.printJSON(overview) }
        var lines: [String] = []
        lines.append(CLI.table(["ROLE", "EXISTS", "MEMBERS"], overview.roles.map { role in
            [role.name, role.exists ? "yes" : "no", role.members.isEmpty ? "-" : role.members.joined(separator: ", ")]
        }))
        lines.append("")
        if overview.grants.isEmpty {
            lines.append("No namespace grants in this database.")
        } else {
            lines.append(CLI.table(["LOGIN", "NAMESPACE", "GRANTED", "BY"], overview.grants.map { grant in
                [grant.role, grant.namespace, CLI.time(grant.grantedAt), grant.grantedBy]
            }))
        }
        if !overview.setUp { lines.append("Roles are not set up in this database: run `orcastra roles setup`.") }
        print(lines.joined(separator: "\n"))
    }
}
