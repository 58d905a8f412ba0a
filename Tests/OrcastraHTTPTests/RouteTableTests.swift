import Foundation
@testable import OrcastraHTTP
import Testing

/// The middleware's route table (404 versus 405, the scope of each route) and docs/openapi.yaml
/// name the same operations.
@Suite(.timeLimit(.minutes(5))) struct RouteTableTests {
    @Test func routeTableMatchesTheSpec() throws {
        let spec = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/openapi.yaml")
        let lines = try String(contentsOf: spec, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        var operations: Set<String> = []
        var path: String?
        var inPaths = false
        for line in lines {
            if line == "paths:" { inPaths = true; continue }
            if inPaths, !line.hasPrefix(" "), !line.isEmpty { break }
            guard inPaths else { continue }
            if line.hasPrefix("  /"), line.hasSuffix(":") {
                path = String(line.dropFirst(2).dropLast())
            } else if let path, let method = ["get", "post", "put", "delete", "patch"].first(where: { line == "    \($0):" }) {
                let pattern = path.split(separator: "/").map { $0.hasPrefix("{") ? "*" : String($0) }.joined(separator: "/")
                operations.insert("\(method.uppercased()) \(pattern)")
            }
        }
        let table = Set(APIRoute.all.map { "\($0.method.rawValue) \($0.pattern.joined(separator: "/"))" })
        #expect(operations.count == 23)
        #expect(table == operations, "only in the table: \(table.subtracting(operations)); only in the spec: \(operations.subtracting(table))")
        // Every /v1 route needs a scope; the health checks none.
        #expect(APIRoute.all.allSatisfy { ($0.pattern.first == "v1") == ($0.scope != nil) })
    }
}
