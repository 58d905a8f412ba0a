import CLibPQ
import Foundation

/// Describes a connection target for people, without its password.
public enum ConnectionAddress {
    /// The keywords a URL or `key=value` string sets, as libpq reads them (`host` may list several
    /// hosts, comma-separated); empty when libpq cannot read it.
    public static func values(_ conninfo: String) -> [String: String] {
        var values: [String: String] = [:]
        guard !conninfo.isEmpty else { return values }
        var error: UnsafeMutablePointer<CChar>?
        if let options = PQconninfoParse(conninfo, &error) {
            var option = options
            while let keyword = option.pointee.keyword {
                if let value = option.pointee.val { values[String(cString: keyword)] = String(cString: value) }
                option += 1
            }
            PQconninfoFree(options)
        } else if let error {
            PQfreemem(error)
        }
        return values
    }

    /// "user@host:port/dbname" from a URL, a `key=value` string or the `PG*` environment.
    public static func describe(_ conninfo: String) -> String {
        if !conninfo.isEmpty, parseProblem(conninfo) != nil { return "(unparseable connection string)" }
        let values = values(conninfo)
        let environment = ProcessInfo.processInfo.environment
        let host = values["host"] ?? values["hostaddr"] ?? environment["PGHOST"] ?? "local socket"
        let port = values["port"] ?? environment["PGPORT"] ?? "5432"
        let user = values["user"] ?? environment["PGUSER"]
        let database = values["dbname"] ?? environment["PGDATABASE"] ?? user ?? ""
        return "\(user.map { "\($0)@" } ?? "")\(places(hosts: host, ports: port))/\(database)"
    }
}

extension ConnectionAddress {
    /// "db1:5433,db2:5434" from libpq's comma-separated `host` and `port` lists (a multi-host
    /// string): one port applies to every host, as libpq reads it.
    static func places(hosts: String, ports: String) -> String {
        let hostList = hosts.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        let portList = ports.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        return hostList.enumerated().map { index, host in
            let port = portList.count == hostList.count ? portList[index] : (portList.first ?? "5432")
            let shownPort = port.isEmpty ? "5432" : port
            let shownHost = host.isEmpty ? "localhost" : host
            return shownHost.hasPrefix("/") ? "\(shownHost) (socket) port \(shownPort)" : "\(shownHost):\(shownPort)"
        }.joined(separator: ",")
    }

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
