import Foundation
import OrcastraClient
import OrcastraInvariants
import OrcastraMigrations
import OrcastraPostgres
import OrcastraStateMachines
import OrcastraStore
import OrcastraTemplates
import OrcastraTesting
import Testing

/// A migrated database with `orcastra roles setup` applied, a template with steps in `billing` and
/// `shipping`, and login roles made on demand (cluster-wide, unique per test).
struct RolesFixture {
    let url: String
    let admin: PostgresPool

    static let template = """
        namespace: shop
        name: order
        version: 1.0.0
        steps:
          - {name: charge, handler: billing.charge, namespace: billing}
          - {name: ship, handler: shipping.ship, namespace: shipping}
        """

    init() async throws {
        url = try await TestDatabases.shared.makeDatabase()
        admin = PostgresPool(conninfo: url, maximumConnections: 3)
        _ = try await RoleAdministration(pool: admin).setup()
        let template = try TemplateParser.parse(yaml: Self.template, file: "roles.yaml")
        _ = try await TemplateRegistry(pool: admin).register(LoadedTemplate(file: "roles.yaml", source: Self.template, template: template))
    }

    /// A new LOGIN role, member of `groups`.
    func login(_ prefix: String, member groups: [OrcastraRole] = []) async throws -> String {
        let name = "\(prefix)_\(UInt32.random(in: 0..<UInt32.max))"
        try await admin.withConnection { connection in
            try await connection.executeSimple("CREATE ROLE \(name) LOGIN")
            for group in groups { try await connection.executeSimple("GRANT \(group.rawValue) TO \(name)") }
        }
        TestDatabases.dropAtExit(role: name, server: url)
        return name
    }

    /// A worker login granted `namespaces`.
    func worker(_ namespaces: [String] = ["billing"]) async throws -> String {
        let name = try await login("w")
        try await RoleAdministration(pool: admin).grantWorker(name, namespaces: namespaces)
        return name
    }

    func connect(as role: String) async throws -> PostgresConnection {
        try await PostgresConnection.connect(TestDatabases.conninfo(url, as: role))
    }

    func submit() async throws -> UUID {
        try await TaskCreator(pool: admin).create(TaskRequest(template: TemplateReference(parsing: "shop/order"), context: .object([:]))).taskID
    }

    func shutdown() async { await admin.shutdown() }
}

/// The SQLSTATE of what `body` throws, or nil when it does not throw.
func sqlState(_ body: () async throws -> Void) async -> String? {
    do {
        try await body()
        return nil
    } catch let error as PostgresError {
        // Refused before it was sent (a NUL in text): no SQLSTATE, but refused all the same.
        return error.sqlState ?? "\(error)"
    } catch let error as MigrationError {
        if case .failed(_, _, _, let underlying, _) = error { return (underlying as? PostgresError)?.sqlState }
        return "\(error)"
    } catch {
        return "\(error)"
    }
}

let insufficientPrivilege = "42501"

@Suite(.timeLimit(.minutes(3))) struct RoleRefusalTests {
    @Test(arguments: ["tasks", "steps", "step_results", "templates", "task_transitions", "workers", "namespace_grants", "schedules"])
    func aWorkerCannotReadTables(table: String) async throws {
        let fixture = try await RolesFixture()
        let connection = try await fixture.connect(as: try await fixture.worker())
        #expect(await sqlState { _ = try await connection.query("SELECT * FROM orcastra.\(unescaped: table)") } == insufficientPrivilege)
        #expect(await sqlState { _ = try await connection.query("DELETE FROM orcastra.\(unescaped: table)") } == insufficientPrivilege)
        await connection.close()
        await fixture.shutdown()
    }

    @Test func aWorkerClaimsItsNamespaceOnlyAndReadsItsTemplate() async throws {
        let fixture = try await RolesFixture()
        let task = try await fixture.submit()
        let connection = try await fixture.connect(as: try await fixture.worker(["billing"]))
        #expect(await sqlState { _ = try await connection.query("SELECT * FROM orcastra.claim_steps('shipping', 'w', 10, 30000)") }
                == OrcastraSQLState.namespaceNotGranted.rawValue)
        #expect(await sqlState { _ = try await connection.query("SELECT * FROM orcastra.register_worker('w', 'shipping', 'h', 1, 'v', 1, 1000)") }
                == OrcastraSQLState.namespaceNotGranted.rawValue)
        let claimed = try await connection.query("SELECT step_name, task_id, template_id FROM orcastra.claim_steps('billing', 'w', 10, 30000)")
        #expect(try claimed.map { try $0.decode("step_name", as: String.self) } == ["charge"])
        #expect(try claimed.first?.decode("task_id", as: UUID.self) == task)
        let templateID: Int64 = try #require(claimed.first).decode("template_id")
        let definition = try await connection.queryRow("SELECT orcastra.template_definition(\(templateID), 'billing')::text AS d")
            .decode("d", as: String.self)
        #expect(definition.contains("billing.charge"))
        #expect(await sqlState { _ = try await connection.query("SELECT orcastra.template_definition(\(templateID), 'shipping')") }
                == OrcastraSQLState.namespaceNotGranted.rawValue)
        // The shipping step was not touched by the refused claim.
        #expect(try await fixture.admin.query("SELECT state FROM orcastra.steps WHERE task_id = \(task) AND name = 'ship'")
            .first?.decode("state", as: String.self) == "enqueued")
        await connection.close()
        await fixture.shutdown()
    }

    /// A transactional step (issue 21) run by a worker login: its own write and the step's
    /// completion commit together through complete_step_in_transaction, which the worker may call.
    @Test func aWorkerCompletesATransactionalStep() async throws {
        let fixture = try await RolesFixture()
        let task = try await fixture.submit()
        let login = try await fixture.worker(["billing"])
        try await fixture.admin.query("CREATE TABLE public.effects (step_id bigint PRIMARY KEY)")
        try await fixture.admin.withConnection { try await $0.executeSimple("GRANT INSERT, SELECT ON public.effects TO \(login)") }
        let connection = try await fixture.connect(as: login)
        let claimed = try await connection.queryRow("SELECT step_id, lease_token FROM orcastra.claim_steps('billing', 'w', 1, 30000)")
        let step: Int64 = try claimed.decode("step_id")
        let token: UUID = try claimed.decode("lease_token")
        try await connection.withTransaction { transaction in
            try await transaction.execute("INSERT INTO public.effects (step_id) VALUES (\(step))")
            _ = try await transaction.query("SELECT orcastra.complete_step_in_transaction(\(step), \(token), '{\"charged\": true}'::jsonb)")
        }
        #expect(try await fixture.admin.query("SELECT state FROM orcastra.steps WHERE id = \(step)").first?.decode("state", as: String.self) == "complete")
        #expect(try await fixture.admin.query("SELECT count(*) AS n FROM public.effects").first?.decode("n", as: Int.self) == 1)
        #expect(try await fixture.admin.query("SELECT result->>'charged' AS charged FROM orcastra.step_results WHERE step_id = \(step)")
            .first?.decode("charged", as: String.self) == "true")
        #expect(try await fixture.admin.query("SELECT count(*) AS n FROM orcastra.steps WHERE task_id = \(task)").first?.decode("n", as: Int.self) == 2)
        await connection.close()
        await fixture.shutdown()
    }

    @Test func aWorkerCannotCancelMigrateOrCallInternals() async throws {
        let fixture = try await RolesFixture()
        let task = try await fixture.submit()
        let connection = try await fixture.connect(as: try await fixture.worker())
        for statement: SQL in [
            "SELECT orcastra.cancel_task(\(task), 'x')",
            "SELECT orcastra.create_task_by_name('shop', 'order')",
            "SELECT orcastra.retry_step(1, 'x')",
            "SELECT orcastra.release_children('{1}')",
            "SELECT orcastra.settle_tasks(ARRAY[\(task)]::uuid[])",
            "SELECT orcastra.start_due_tasks(10)",
            "SELECT * FROM orcastra.apply_grants()",
            "CREATE OR REPLACE FUNCTION orcastra.may_work(p_namespace text) RETURNS boolean LANGUAGE sql AS 'SELECT true'",
            "CREATE TABLE orcastra.mine (x int)",
            "ALTER TABLE orcastra.steps DISABLE TRIGGER steps_state_change",
            "SET ROLE orcastra_admin",
        ] {
            #expect(await sqlState { _ = try await connection.query(statement) } == insufficientPrivilege, "\(statement.text)")
        }
        #expect(await sqlState { try await Migrator.bundled().migrate(on: connection) } == insufficientPrivilege)
        #expect(try await fixture.admin.query("SELECT state FROM orcastra.tasks WHERE id = \(task)").first?.decode("state", as: String.self) == "in_progress")
        await connection.close()
        await fixture.shutdown()
    }

    /// The namespace is only ever compared: quotes, SQL, patterns and look-alikes are refused and
    /// change nothing.
    @Test(arguments: ["x'; DROP TABLE orcastra.tasks; --", "billing'", "\"billing\"", "billing ", " billing", "Billing",
                      "%", "bill_ng", "billing\\", "billing;shipping", "billing\u{0}shipping", "') OR true --"])
    func aCraftedNamespaceDoesNotEscape(namespace: String) async throws {
        let fixture = try await RolesFixture()
        let task = try await fixture.submit()
        let connection = try await fixture.connect(as: try await fixture.worker(["billing"]))
        let state = await sqlState { _ = try await connection.query("SELECT * FROM orcastra.claim_steps(\(namespace), 'w', 10, 30000)") }
        // Text with a NUL is refused by the driver before it is sent; everything else by the database as not granted.
        #expect(state == OrcastraSQLState.namespaceNotGranted.rawValue || (namespace.contains("\u{0}") && state != nil),
                "\((state ?? "claimed").replacingOccurrences(of: "\u{0}", with: "\\0"))")
        #expect(try await fixture.admin.query("SELECT count(*) AS n FROM orcastra.steps WHERE task_id = \(task) AND state = 'enqueued'")
            .first?.decode("n", as: Int.self) == 2)
        await connection.close()
        await fixture.shutdown()
    }

    /// A caller's search_path cannot put its own functions or tables in front of the ones the
    /// SECURITY DEFINER functions use: neither a schema it may use nor its temporary schema.
    @Test func aCraftedSearchPathDoesNotEscape() async throws {
        let fixture = try await RolesFixture()
        _ = try await fixture.submit()
        let worker = try await fixture.worker(["billing"])
        try await fixture.admin.withConnection { connection in
            try await connection.executeSimple("""
                CREATE SCHEMA attacker;
                GRANT USAGE ON SCHEMA attacker TO \(worker);
                CREATE FUNCTION attacker.pg_has_role(name, oid, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
                CREATE FUNCTION attacker.pg_has_role(name, name, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
                CREATE FUNCTION attacker.may_work(text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
                CREATE FUNCTION attacker.caller_is_admin() RETURNS boolean LANGUAGE sql AS 'SELECT true';
                CREATE TABLE attacker.namespace_grants (role regrole, namespace text);
                INSERT INTO attacker.namespace_grants VALUES ('\(worker)', 'shipping');
                CREATE TABLE attacker.steps (LIKE orcastra.steps);
                GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA attacker TO \(worker);
                GRANT SELECT ON ALL TABLES IN SCHEMA attacker TO \(worker);
                """)
        }
        let connection = try await fixture.connect(as: worker)
        try await connection.executeSimple("""
            CREATE TEMP TABLE namespace_grants (role regrole, namespace text);
            INSERT INTO namespace_grants VALUES ('\(worker)', 'shipping');
            """)
        for path in ["attacker, pg_catalog, orcastra", "pg_temp, attacker, orcastra, pg_catalog", "attacker, orcastra"] {
            try await connection.executeSimple("SET search_path = \(path)")
            #expect(await sqlState { _ = try await connection.query("SELECT * FROM orcastra.claim_steps('shipping', 'w', 10, 30000)") }
                    == OrcastraSQLState.namespaceNotGranted.rawValue, "\(path)")
        }
        // And the granted namespace still works under the hostile path: the function finds its own objects.
        let claimed = try await connection.query("SELECT step_name FROM orcastra.claim_steps('billing', 'w', 10, 30000)")
        #expect(try claimed.map { try $0.decode("step_name", as: String.self) } == ["charge"])
        // Every function a role may call pins its search_path.
        let unpinned = try await fixture.admin.query("""
            SELECT p.proname::text AS name FROM pg_proc p
            WHERE p.pronamespace = 'orcastra'::regnamespace AND p.prosecdef
              AND NOT coalesce('search_path=pg_catalog, orcastra, pg_temp' = ANY (p.proconfig), false)
            """).map { try $0.decode("name", as: String.self) }
        #expect(unpinned.isEmpty, "\(unpinned)")
        await connection.close()
        await fixture.shutdown()
    }

    @Test func aSubmitterCreatesReadsAndCancelsButCannotClaim() async throws {
        let fixture = try await RolesFixture()
        let submitter = try await fixture.login("s", member: [.submitter])
        let client = OrcastraClient(conninfo: TestDatabases.conninfo(fixture.url, as: submitter), maximumConnections: 2)
        let creation = try await client.submit(TaskRequest(template: TemplateReference(parsing: "shop/order"), context: .object(["n": 1])))
        #expect(try await client.task(creation.taskID).steps.count == 2)
        #expect(try await client.cancel(creation.taskID) == .cancelled)
        #expect(await sqlState { _ = try await client.pool.query("SELECT * FROM orcastra.claim_steps('billing', 's', 10, 30000)") } == insufficientPrivilege)
        #expect(await sqlState { _ = try await client.pool.query("SELECT orcastra.retry_task(\(creation.taskID), 'x')") } == insufficientPrivilege)
        #expect(await sqlState { _ = try await client.pool.query("DELETE FROM orcastra.tasks") } == insufficientPrivilege)
        await client.shutdown()

        let reader = try await fixture.login("r", member: [.reader])
        let readerClient = OrcastraClient(conninfo: TestDatabases.conninfo(fixture.url, as: reader), maximumConnections: 2)
        #expect(try await readerClient.task(creation.taskID).state == .cancelled)
        #expect(await sqlState { _ = try await readerClient.pool.query("SELECT orcastra.create_task_by_name('shop', 'order')") } == insufficientPrivilege)
        #expect(await sqlState { _ = try await readerClient.pool.query("SELECT orcastra.cancel_task(\(creation.taskID), 'x')") } == insufficientPrivilege)
        await readerClient.shutdown()
        await fixture.shutdown()
    }

    /// A worker login touches only the registry rows it registered.
    @Test func aWorkerCannotDeregisterAnotherWorkersRow() async throws {
        let fixture = try await RolesFixture()
        let first = try await fixture.connect(as: try await fixture.worker(["billing"]))
        let second = try await fixture.connect(as: try await fixture.worker(["billing"]))
        _ = try await first.query("SELECT * FROM orcastra.register_worker('first', 'billing', 'h', 1, 'v', 1, 1000)")
        #expect(try await second.queryRow("SELECT orcastra.deregister_worker('first') AS gone").decode("gone", as: Bool.self) == false)
        #expect(try await second.queryRow("SELECT orcastra.heartbeat_worker('first', 0) AS known").decode("known", as: Bool.self) == false)
        #expect(await sqlState { _ = try await second.query("SELECT * FROM orcastra.register_worker('first', 'billing', 'h', 2, 'v', 1, 1000)") }
                == insufficientPrivilege)
        #expect(try await first.queryRow("SELECT orcastra.deregister_worker('first') AS gone").decode("gone", as: Bool.self))
        await first.close()
        await second.close()
        await fixture.shutdown()
    }

    @Test func anAdminMemberWorksAnyNamespaceAndMigrates() async throws {
        let fixture = try await RolesFixture()
        _ = try await fixture.submit()
        let connection = try await fixture.connect(as: try await fixture.login("a", member: [.admin]))
        let claimed = try await connection.query("SELECT step_name FROM orcastra.claim_steps('shipping', 'a', 10, 30000)")
        #expect(try claimed.map { try $0.decode("step_name", as: String.self) } == ["ship"])
        let report = try await Migrator.bundled().migrate(on: connection)
        #expect(report.applied.isEmpty)
        await connection.close()
        await fixture.shutdown()
    }

    @Test func theOrchestratorRoleRunsChoresButCannotClaim() async throws {
        let fixture = try await RolesFixture()
        let connection = try await fixture.connect(as: try await fixture.login("o", member: [.orchestrator]))
        for chore: SQL in ["SELECT orcastra.start_due_tasks(10)", "SELECT orcastra.enqueue_due_retries(10)",
                           "SELECT orcastra.recover_expired_leases(10)", "SELECT orcastra.settle_stalled_tasks(10)",
                           "SELECT orcastra.next_due()", "SELECT orcastra.prune_workers()",
                           #"SELECT * FROM orcastra.prune_expired_tasks('{"complete_ms": 604800000}', 10000)"#] {
            _ = try await connection.query(chore)
        }
        // Retention through its chore only: not the deletion it is built on (`orcastra prune` is the owner's).
        #expect(await sqlState { _ = try await connection.query("SELECT * FROM orcastra.delete_tasks('{}'::uuid[])") } == insufficientPrivilege)
        #expect(await sqlState { _ = try await connection.query("SELECT * FROM orcastra.claim_steps('billing', 'o', 1, 1000)") } == insufficientPrivilege)
        #expect(await sqlState { _ = try await connection.query("SELECT * FROM orcastra.tasks") } == insufficientPrivilege)
        await connection.close()
        await fixture.shutdown()
    }
}

@Suite(.timeLimit(.minutes(3))) struct RoleSetupTests {
    /// Roles are per cluster, privileges per database: setup runs twice on one database and at
    /// once on several databases of the same cluster.
    @Test func setupIsIdempotentAndSafeAcrossDatabases() async throws {
        let fixture = try await RolesFixture()
        let again = try await RoleAdministration(pool: fixture.admin).setup()
        #expect(again.created.isEmpty)
        #expect(Set(again.existing) == Set(OrcastraRole.allCases.map(\.rawValue)))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<3 {
                group.addTask {
                    let pool = PostgresPool(conninfo: try await TestDatabases.shared.makeDatabase(), maximumConnections: 2)
                    _ = try await RoleAdministration(pool: pool).setup()
                    let overview = try await RoleAdministration(pool: pool).overview()
                    #expect(overview.setUp && overview.roles.allSatisfy(\.exists))
                    await pool.shutdown()
                }
            }
            try await group.waitForAll()
        }
        // A later migrate (here: a repeatable file re-applied) keeps the privileges complete.
        try await fixture.admin.query("UPDATE orcastra.schema_repeatables SET checksum = 'changed' WHERE file = 'functions/workers.sql'")
        _ = try await Migrator.bundled().migrate(on: try await PostgresConnection.connect(fixture.url))
        let worker = try await fixture.connect(as: try await fixture.worker())
        _ = try await worker.query("SELECT * FROM orcastra.register_worker('w', 'billing', 'h', 1, 'v', 1, 1000)")
        let reader = try await fixture.connect(as: try await fixture.login("r", member: [.reader]))
        #expect(try await reader.query("SELECT id FROM orcastra.worker_status").count == 1)
        await worker.close()
        await reader.close()
        await fixture.shutdown()
    }

    @Test func grantsAreRefusedClearly() async throws {
        let fixture = try await RolesFixture()
        let roles = RoleAdministration(pool: fixture.admin)
        await #expect(throws: RoleError.unknownRole("no_such_role_xyz")) {
            try await roles.grantWorker("no_such_role_xyz", namespaces: ["billing"])
        }
        let worker = try await fixture.worker(["billing"])
        #expect(try await roles.grantWorker(worker, namespaces: ["billing", "shipping"]) == ["shipping"])
        #expect(try await roles.revokeWorker(worker, namespaces: ["shipping"]) == ["shipping"])
        #expect(try await roles.overview().grants.filter { $0.role == worker }.map(\.namespace) == ["billing"])
        // A login without CREATEROLE or ownership cannot set up or grant.
        let plain = try await fixture.login("p")
        let pool = PostgresPool(conninfo: TestDatabases.conninfo(fixture.url, as: plain), maximumConnections: 1)
        await #expect { try await RoleAdministration(pool: pool).setup() } throws: { error in
            guard case RoleError.notPermitted(let user, _, _) = error else { return false }
            return user == plain
        }
        await pool.shutdown()
        // A database where setup never ran.
        let fresh = PostgresPool(conninfo: try await TestDatabases.shared.makeDatabase(), maximumConnections: 1)
        await #expect(throws: RoleError.notSetUp) { try await RoleAdministration(pool: fresh).grantWorker(worker, namespaces: ["billing"]) }
        await fresh.shutdown()
        await fixture.shutdown()
    }
}

extension EndToEndTests {
/// The whole engine with least-privilege roles: the orchestrator, a Swift worker and the CLI each
/// connect as a login role of their own, and a task runs to completion.
@Suite(.timeLimit(.minutes(5))) struct RolesEndToEndTests {
    static let template = """
        namespace: e2e
        name: roles
        version: 1.0.0
        steps:
          - {name: first, handler: orcastra.echo}
          - {name: second, handler: orcastra.noop, depends_on: [first], retry: {max_attempts: 2}}
        """

    @Test func theEngineRunsWithLeastPrivilegeRoles() async throws {
        let cluster = try await ProcessCluster()
        do {
            let roles = RoleAdministration(pool: cluster.pool)
            _ = try await roles.setup()
            try await cluster.register(Self.template)
            var logins: [String: String] = [:]
            for (name, group) in [("orchestrator", OrcastraRole.orchestrator), ("submitter", .submitter), ("worker", .worker)] {
                let login = "e2e_\(name)_\(UInt32.random(in: 0..<UInt32.max))"
                try await cluster.pool.withConnection { connection in
                    try await connection.executeSimple("CREATE ROLE \(login) LOGIN")
                    if group != .worker { try await connection.executeSimple("GRANT \(group.rawValue) TO \(login)") }
                }
                TestDatabases.dropAtExit(role: login, server: cluster.url)
                logins[name] = login
            }
            let worker = try #require(logins["worker"]), submitter = try #require(logins["submitter"])
            try await roles.grantWorker(worker, namespaces: ["e2e"])
            try cluster.orchestrator(as: logins["orchestrator"])
            try cluster.worker(namespace: "e2e", as: worker)

            let orcastra = CommandLineTool("orcastra")
            let environment = ["ORCASTRA_DATABASE_URL": cluster.url(as: submitter)]
            let submitted = try await orcastra.run(["submit", "e2e/roles", "--context", #"{"n": 7}"#, "--wait", "--timeout", "60s", "--json"],
                                                   environment: environment)
            #expect(submitted.status == 0, "\(submitted.output)\n\(cluster.logs)")
            let detail = try JSONSerialization.jsonObject(with: Data(submitted.standardOutput.utf8)) as? [String: Any]
            let id = try #require(detail?["id"] as? String, "\(submitted.output)")
            #expect(detail?["state"] as? String == "complete", "\(submitted.output)\n\(cluster.logs)")
            // A task that starts later: the orchestrator's login starts it (start_due_tasks).
            let later = Date().addingTimeInterval(1.5).formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
            let scheduled = try await orcastra.run(["submit", "e2e/roles", "--at", later, "--wait", "--timeout", "60s", "--json"],
                                                   environment: environment)
            #expect(scheduled.status == 0 && scheduled.standardOutput.contains("\"complete\""), "\(scheduled.output)\n\(cluster.logs)")
            let shown = try await orcastra.run(["task", "show", id, "--json"], environment: environment)
            #expect(shown.status == 0 && shown.standardOutput.contains("\"complete\""), "\(shown.output)")
            // The worker registered as its own login; the submitter may not migrate or operate.
            #expect(try await cluster.count("SELECT count(*) FROM orcastra.workers WHERE login_role = \(worker)") == 1)
            let migrate = try await orcastra.run(["migrate"], environment: environment)
            #expect(migrate.status == 77, "\(migrate.output)")
            let retry = try await orcastra.run(["task", "retry", id], environment: environment)
            #expect(retry.status == 77, "\(retry.output)")

            // The worker's login cannot serve a namespace it was not granted: a worker started for
            // one says so, and claims nothing.
            let other = try cluster.worker(namespace: "elsewhere", as: worker)
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline && !other.log.contains("OR007") { try await Task.sleep(for: .milliseconds(100)) }
            #expect(other.log.contains("OR007"), "\(other.log.suffix(2000))")

            // Nothing the orchestrator or the granted worker did was refused.
            #expect(!cluster.logs.contains("42501") && !cluster.logs.contains("permission denied"), "\(cluster.logs)")

            let connection = try await PostgresConnection.connect(cluster.url)
            let violations = try await InvariantChecker().check(on: connection)
            await connection.close()
            #expect(violations.isEmpty, "\(violations.map(\.description))")
        } catch {
            Issue.record(error, "\(cluster.logs)")
        }
        await cluster.shutdown()
    }
}
}
