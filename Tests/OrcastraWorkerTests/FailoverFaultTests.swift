@testable import OrcastraWorker
@testable import OrcastraPostgres
import Testing

/// An outcome the database refused for its content ends its step; one it could not take because of
/// a passing fault is reported again. A failover's faults are passing ones: the step must not be
/// failed (nor its result thrown away) because the server was a demoted primary for a moment.
@Suite struct FailoverFaultTests {
    static func server(_ sqlState: String) -> PostgresError {
        .server(ServerError(sqlState: sqlState, severity: "ERROR", message: "test", statement: "SELECT 1"))
    }

    @Test(arguments: [
        "25006",  // read_only_sql_transaction: a standby, or a demoted primary
        "57P01",  // admin_shutdown: the old primary stopping
        "57P03",  // cannot_connect_now: a server still starting or promoting
        "08006",  // connection_failure
        "40001",  // serialization_failure
    ])
    func failoverFaultsAreNotRefusals(sqlState: String) {
        #expect(!Worker.isRefusal(Self.server(sqlState)))
    }

    @Test func lostConnectionsAreNotRefusals() {
        #expect(!Worker.isRefusal(PostgresError.connectionLost(message: "server closed the connection unexpectedly")))
        #expect(!Worker.isRefusal(PostgresError.connectionFailed(address: "db1:5432,db2:5432/orcastra", message: "refused")))
    }

    @Test(arguments: ["23505", "22P02", "54000"])
    func contentErrorsAreRefusals(sqlState: String) {
        #expect(Worker.isRefusal(Self.server(sqlState)))
    }
}
