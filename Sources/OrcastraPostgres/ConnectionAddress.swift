import CLibPQ
import Foundation

/// Describes a connection target for people, without its password.
public enum ConnectionAddress {
    /// "user@host:port/dbname" from a URL, a `key=value` string or the `PG*` environment.
    public static func describe(_ conninfo: String) -> String {
        var values: [String: String] = [:]
        if !conninfo.isEmpty {
            var error: UnsafeMutablePointer<CChar>?
            if let options = PQconninfoParse(conninfo, &error) {
                var option = options
                while let keyword = option.pointee.keyword {
                    if let value = option.pointee.val { values[String(cString: keyword)] = String(cString: value) }
                    option += 1
                }
                PQconninfoFree(options)
            } else {
                if let error { PQfreemem(error) }
                return "(unparseable connection string)"
            }
        }
        let environment = ProcessInfo.processInfo.environment
        let host = values["host"] ?? values["hostaddr"] ?? environment["PGHOST"] ?? "local socket"
        let port = values["port"] ?? environment["PGPORT"] ?? "5432"
        let user = values["user"] ?? environment["PGUSER"]
        let database = values["dbname"] ?? environment["PGDATABASE"] ?? user ?? ""
        let place = host.hasPrefix("/") ? "\(host) (socket) port \(port)" : "\(host):\(port)"
        return "\(user.map { "\($0)@" } ?? "")\(place)/\(database)"
    }
}

extension ConnectionAddress {
    /// Why libpq cannot read `conninfo` (a URL or `key=value` string), or nil when it can.
    public static func parseProblem(_ conninfo: String) -> String? {
        var error: UnsafeMutablePointer<CChar>?
        if let options = PQconninfoParse(conninfo, &error) {
            PQconninfoFree(options)
            return nil
        }
        defer { if let error { PQfreemem(error) } }
        return error.map { String(cString: $0).trimmingCharacters(in: .whitespacesAndNewlines) } ?? "it cannot be read"
    }

    /// The same connection target with another database name, in `key='value'` form.
    /// Works for URLs, `key=value` strings and "" (environment only).
    public static func replacingDatabase(in conninfo: String, with database: String) -> String {
        var pairs: [(String, String)] = []
        if !conninfo.isEmpty {
            var error: UnsafeMutablePointer<CChar>?
            if let options = PQconninfoParse(conninfo, &error) {
                var option = options
                while let keyword = option.pointee.keyword {
                    let key = String(cString: keyword)
                    if let value = option.pointee.val, key != "dbname" { pairs.append((key, String(cString: value))) }
                    option += 1
                }
                PQconninfoFree(options)
            } else if let error {
                PQfreemem(error)
            }
        }
        pairs.append(("dbname", database))
        return pairs.map { key, value in
            "\(key)='\(value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'"))'"
        }.joined(separator: " ")
    }
}
