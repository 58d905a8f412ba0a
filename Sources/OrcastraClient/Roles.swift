import Foundation
import OrcastraPostgres
import OrcastraStore

/// The least-privilege roles (docs/security.md): the group roles `orcastra roles setup` creates,
/// in the order the docs list them.
public enum OrcastraRole: String, CaseIterable, Sendable, Codable {
    case admin = "orcastra_admin"
    case worker = "orcastra_worker"
    case submitter = "orcastra_submitter"
    case reader = "orcastra_reader"
    case orchestrator = "orcastra_orchestrator"
}

/// What `orcastra roles …` refuses, each as one sentence that says what to do next.
public enum RoleError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Roles are missing and the connecting user may not create them.
    case cannotCreateRoles(user: String, missing: [String])
    /// `roles setup` has not run in this database (orcastra_admin does not own the schema).
    case notSetUp
    /// No role with this name exists in the cluster.
    case unknownRole(String)
    /// The connecting user lacks a privilege the action needs; `detail` is the server's message.
    case notPermitted(user: String, action: String, detail: String)

    public var description: String {
        switch self {
        case .cannotCreateRoles(let user, let missing):
            return "Cannot create the roles \(missing.joined(separator: ", ")): the connecting user \(user) is neither a superuser nor has CREATEROLE. "
                + "Run `orcastra roles setup` as a superuser or a role with CREATEROLE (ALTER ROLE \(user) CREATEROLE), "
                + "or have those roles created once for the whole cluster by someone who can."
        case .notSetUp:
            return "Roles are not set up in this database: run `orcastra roles setup` first (as a superuser or a role with CREATEROLE)."
        case .unknownRole(let name):
            return "There is no role \(name) in this PostgreSQL cluster. Create it first, e.g. CREATE ROLE \(Self.identifier(name)) LOGIN PASSWORD '…', then grant it."
        case .notPermitted(let user, let action, let detail):
            return "The connecting user \(user) may not \(action): \(detail). Run it as a superuser, or as a member of orcastra_admin with CREATEROLE."
        }
    }

    /// The name as an SQL identifier, quoted when it must be (for the suggested statements).
    static func identifier(_ name: String) -> String {
        let plain = name.range(of: "^[a-z_][a-z0-9_$]*$", options: .regularExpression) != nil
        return plain ? name : "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

/// What `orcastra roles setup` did.
public struct RolesSetup: Sendable, Codable, Equatable {
    /// Group roles this run created.
    public var created: [String]
    /// Group roles that existed already (roles are per cluster; a second database shares them).
    public var existing: [String]
    /// What applying the privileges did, one line each (`orcastra.apply_grants()`).
    public var applied: [String]
}

/// One login (or group) role allowed to work one namespace.
public struct NamespaceGrant: Sendable, Codable, Equatable {
    public var role: String
    public var namespace: String
    public var grantedAt: Date
    public var grantedBy: String

    enum CodingKeys: String, CodingKey {
        case role, namespace, grantedAt = "granted_at", grantedBy = "granted_by"
    }
}

/// The roles of the cluster and the namespace grants of this database: `orcastra roles show`.
public struct RolesOverview: Sendable, Codable, Equatable {
    public struct GroupRole: Sendable, Codable, Equatable {
        public var name: String
        public var exists: Bool
        /// Roles that are direct members.
        public var members: [String]
    }

    /// Whether orcastra_admin owns the schema here: roles setup ran in this database.
    public var setUp: Bool
    public var roles: [GroupRole]
    public var grants: [NamespaceGrant]

    enum CodingKeys: String, CodingKey { case setUp = "set_up", roles, grants }
}

/// Creates the roles and grants namespaces (`orcastra roles …`). Roles are cluster-wide: creating
/// them is idempotent and safe while another database of the same cluster does the same; grants
/// and the namespace list live in each database.
public struct RoleAdministration: Sendable {
    public let pool: PostgresPool

    public init(pool: PostgresPool) { self.pool = pool }

    /// Creates the missing group roles, makes orcastra_admin the owner of the schema and of
    /// everything in it, and applies every role's privileges. Safe to run again at any time.
    public func setup() async throws -> RolesSetup {
        do {
            return try await setupUnchecked()
        } catch let error as PostgresError where error.sqlState == "42501" {
            throw RoleError.notPermitted(user: try await currentUser(), action: "set up the roles in this database", detail: Self.message(error))
        }
    }

    private func setupUnchecked() async throws -> RolesSetup {
        try await pool.withConnection { connection in
            let me = try await connection.queryRow("""
                SELECT current_user::text AS name, r.rolsuper AS superuser, r.rolcreaterole AS createrole
                FROM pg_roles r WHERE r.rolname = current_user
                """)
            let user: String = try me.decode("name")
            let canCreate = try me.decode("superuser", as: Bool.self) || me.decode("createrole", as: Bool.self)
            let present = Set(try await connection.query("SELECT rolname::text AS name FROM pg_roles WHERE rolname LIKE 'orcastra\\_%'")
                .map { try $0.decode("name", as: String.self) })
            let missing = OrcastraRole.allCases.map(\.rawValue).filter { !present.contains($0) }
            if !missing.isEmpty && !canCreate { throw RoleError.cannotCreateRoles(user: user, missing: missing) }
            // On this connection: the pool may have no second one (a deadlock with a pool of one).
            if try await !connection.queryRow("SELECT to_regclass('orcastra.namespace_grants') IS NOT NULL AS present")
                .decode("present", as: Bool.self) {
                throw StoreError.notMigrated
            }

            // Another database of the cluster may create one at the same moment: then it exists.
            for role in missing { try await Self.tolerant(connection, "CREATE ROLE \(role) NOLOGIN") }
            let created = missing
            return try await connection.withTransaction { connection in
                    try await Self.tolerant(connection, "GRANT orcastra_reader TO orcastra_submitter")
                    // A non-superuser who sets up must be able to act as the owner it hands the schema to.
                    if try await !connection.queryRow("SELECT pg_has_role(current_user, 'orcastra_admin', 'MEMBER') AS member")
                        .decode("member", as: Bool.self) {
                        try await Self.tolerant(connection, "GRANT orcastra_admin TO \(RoleError.identifier(user))")
                    }
                    try connection.executeSimple("ALTER SCHEMA orcastra OWNER TO orcastra_admin")
                    let applied = try await connection.query("SELECT apply_grants AS line FROM orcastra.apply_grants() AS apply_grants")
                        .map { try $0.decode("line", as: String.self) }
                    return RolesSetup(created: created, existing: OrcastraRole.allCases.map(\.rawValue).filter { !created.contains($0) },
                                      applied: applied)
            }
        }
    }

    /// Lets `login` work `namespaces` (each) as a worker: makes it a member of orcastra_worker and
    /// records the grants. Returns the namespaces newly granted (those it had already are left).
    @discardableResult
    public func grantWorker(_ login: String, namespaces: [String]) async throws -> [String] {
        try await requireSetUp()
        let user = try await currentUser()
        return try await pool.withTransaction { connection in
            try await Self.requireRole(login, connection)
            do {
                let statement = try await connection.queryRow("SELECT format('GRANT orcastra_worker TO %I', \(login)::text) AS s")
                    .decode("s", as: String.self)
                try await Self.tolerant(connection, statement)
                var granted: [String] = []
                for namespace in namespaces {
                    let rows = try await connection.query("""
                        INSERT INTO orcastra.namespace_grants (role, namespace)
                        VALUES ((SELECT oid FROM pg_roles WHERE rolname = \(login))::regrole, \(namespace))
                        ON CONFLICT DO NOTHING RETURNING namespace
                        """)
                    if !rows.isEmpty { granted.append(namespace) }
                }
                return granted
            } catch let error as PostgresError where error.sqlState == "42501" {
                throw RoleError.notPermitted(user: user, action: "grant \(login) the worker role", detail: Self.message(error))
            }
        }
    }

    /// Takes namespaces away from `login` (all of them when `namespaces` is nil; then it also
    /// leaves orcastra_worker). Returns the namespaces revoked.
    @discardableResult
    public func revokeWorker(_ login: String, namespaces: [String]?) async throws -> [String] {
        try await requireSetUp()
        let user = try await currentUser()
        return try await pool.withTransaction { connection in
            try await Self.requireRole(login, connection)
            do {
                let only: SQL = namespaces.map { "AND g.namespace = ANY(\($0)::text[])" } ?? ""
                let revoked = try await connection.query("""
                    DELETE FROM orcastra.namespace_grants g
                    WHERE g.role = (SELECT oid FROM pg_roles WHERE rolname = \(login)) \(only)
                    RETURNING g.namespace
                    """).map { try $0.decode("namespace", as: String.self) }
                if namespaces == nil {
                    let statement = try await connection.queryRow("SELECT format('REVOKE orcastra_worker FROM %I', \(login)::text) AS s")
                        .decode("s", as: String.self)
                    try connection.executeSimple(statement)
                }
                return revoked.sorted()
            } catch let error as PostgresError where error.sqlState == "42501" {
                throw RoleError.notPermitted(user: user, action: "revoke \(login)'s worker grants", detail: Self.message(error))
            }
        }
    }

    /// The group roles, their direct members, and this database's namespace grants.
    public func overview() async throws -> RolesOverview {
        try await requireSchema()
        let setUp = try await isSetUp()
        var roles: [RolesOverview.GroupRole] = []
        for role in OrcastraRole.allCases.map(\.rawValue) {
            let rows = try await pool.query("""
                SELECT m.rolname::text AS member FROM pg_roles g
                JOIN pg_auth_members a ON a.roleid = g.oid JOIN pg_roles m ON m.oid = a.member
                WHERE g.rolname = \(role) ORDER BY 1
                """)
            let exists = try await pool.query("SELECT 1 FROM pg_roles WHERE rolname = \(role)").count > 0
            roles.append(.init(name: role, exists: exists, members: try rows.map { try $0.decode("member") }))
        }
        let grants = try await pool.query("""
            SELECT r.rolname::text AS role, g.namespace, g.granted_at, g.granted_by::text AS granted_by
            FROM orcastra.namespace_grants g JOIN pg_roles r ON r.oid = g.role
            ORDER BY r.rolname, g.namespace
            """).map { row in
                NamespaceGrant(role: try row.decode("role"), namespace: try row.decode("namespace"),
                               grantedAt: try row.decode("granted_at"), grantedBy: try row.decode("granted_by"))
            }
        return RolesOverview(setUp: setUp, roles: roles, grants: grants)
    }

    // MARK: - Helpers

    /// Runs a cluster-wide statement that another session may have just done too: a role or a
    /// membership created concurrently (unique_violation, duplicate_object) counts as done.
    private static func tolerant(_ connection: PostgresConnection, _ statement: String) async throws {
        let block = try await connection.queryRow("""
            SELECT format('DO %L', format('BEGIN EXECUTE %L; EXCEPTION WHEN unique_violation OR duplicate_object THEN NULL; END', \(statement)::text)) AS s
            """).decode("s", as: String.self)
        try await connection.executeSimple(block)
    }

    private static func requireRole(_ name: String, _ connection: PostgresConnection) async throws {
        if try await connection.query("SELECT 1 FROM pg_roles WHERE rolname = \(name)").isEmpty { throw RoleError.unknownRole(name) }
    }

    private static func message(_ error: PostgresError) -> String {
        if case .server(let server) = error { return server.message }
        return "\(error)"
    }

    private func currentUser() async throws -> String {
        try await pool.query("SELECT current_user::text AS name").first!.decode("name")
    }

    private func requireSchema() async throws {
        let present = try await pool.query("SELECT to_regclass('orcastra.namespace_grants') IS NOT NULL AS present").first!
            .decode("present", as: Bool.self)
        if !present { throw StoreError.notMigrated }
    }

    private func isSetUp() async throws -> Bool {
        try await pool.query("""
            SELECT coalesce((SELECT n.nspowner = r.oid FROM pg_namespace n, pg_roles r
                             WHERE n.nspname = 'orcastra' AND r.rolname = 'orcastra_admin'), false) AS set_up
            """).first!.decode("set_up", as: Bool.self)
    }

    private func requireSetUp() async throws {
        try await requireSchema()
        if try await !isSetUp() { throw RoleError.notSetUp }
    }
}
