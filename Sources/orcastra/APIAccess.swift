import ArgumentParser
import Foundation
import OrcastraAPIClient
import OrcastraCommandLine

/// `orcastra --api-url URL --api-token TOKEN …` (or ORCASTRA_API_URL and ORCASTRA_API_TOKEN): the
/// commands that can go over the HTTP API do, where only the API is reachable; the others say so.
///
/// The two options are global: they are taken out of the arguments before the commands are
/// parsed, wherever they stand (`orcastra --api-url U submit …` or `orcastra submit … --api-url U`).
struct APIAccess: Sendable {
    var url: String
    var token: String?
    /// A private CA's PEM file to trust (`--api-cacert`, `ORCASTRA_API_CACERT`), and where it was named.
    var caCertificate: (path: String, source: String)?

    /// The process's API settings, nil when the CLI talks SQL.
    static let current: APIAccess? = {
        guard case .success(let parsed) = split(Array(CommandLine.arguments.dropFirst())) else { return nil }
        return parsed.access
    }()

    /// The arguments without the API options, and the settings they and the environment give.
    static func split(_ arguments: [String], environment: [String: String] = ProcessInfo.processInfo.environment)
        -> Result<(arguments: [String], access: APIAccess?), CLIFailure> {
        var rest: [String] = [], url: String?, token: String?, caCertificate: (path: String, source: String)?
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--" { rest += arguments[index...]; break }
            var matched = false
            for name in ["--api-url", "--api-token", "--api-cacert"] {
                var value: String?
                if argument == name {
                    guard index + 1 < arguments.count else {
                        let example = ["--api-url": "--api-url http://127.0.0.1:8080", "--api-token": "--api-token \"$ORCASTRA_API_TOKEN\"",
                                       "--api-cacert": "--api-cacert ca.pem"][name] ?? name
                        return .failure(CLIFailure(message: "\(name) needs a value, e.g. \(example).", exitCode: .usage))
                    }
                    value = arguments[index + 1]
                    index += 1
                } else if argument.hasPrefix(name + "=") {
                    value = String(argument.dropFirst(name.count + 1))
                }
                if let value {
                    switch name {
                    case "--api-url": url = value
                    case "--api-token": token = value
                    default: caCertificate = (value, "--api-cacert")
                    }
                    matched = true
                }
            }
            if !matched { rest.append(argument) }
            index += 1
        }
        let givenDatabase = rest.contains { $0 == "--database-url" || $0.hasPrefix("--database-url=") }
        if url != nil && givenDatabase {
            return .failure(CLIFailure(message: "Give --api-url (through the HTTP API) or --database-url (straight to PostgreSQL), not both.", exitCode: .usage))
        }
        if url == nil, !givenDatabase, let fromEnvironment = environment["ORCASTRA_API_URL"], !fromEnvironment.isEmpty {
            url = fromEnvironment
        }
        if token == nil, let fromEnvironment = environment["ORCASTRA_API_TOKEN"], !fromEnvironment.isEmpty {
            token = fromEnvironment
        }
        if caCertificate == nil, let fromEnvironment = environment["ORCASTRA_API_CACERT"], !fromEnvironment.isEmpty {
            caCertificate = (fromEnvironment, "ORCASTRA_API_CACERT")
        }
        return .success((rest, url.map { APIAccess(url: $0, token: token, caCertificate: caCertificate) }))
    }

    func connect() throws -> OrcastraAPI {
        var certificates: APICACertificates?
        if let caCertificate {
            switch Result(catching: { () throws(APICACertificateError) in
                try APICACertificates(path: caCertificate.path, source: caCertificate.source)
            }) {
            case .success(let loaded): certificates = loaded
            case .failure(let error): throw CLIFailure(message: "\(error)", exitCode: .usage)
            }
        }
        do {
            return try OrcastraAPI(url: url, token: token, caCertificates: certificates)
        } catch {
            throw CLIFailure(message: "--api-url \(error)", exitCode: .usage)
        }
    }

    /// Refuses, before it runs, a command that needs the database when the API was asked for.
    static func check(_ command: any ParsableCommand, words: [String]) throws {
        guard current != nil else { return }
        if let command = command as? any WorksOverHTTP {
            if let refusal = command.refusalOverHTTP() {
                throw CLIFailure(message: "\(refusal) Run it where the database is reachable (--database-url), without --api-url.", exitCode: .usage)
            }
            return
        }
        let needsDatabase = Mirror(reflecting: command).children.contains { $0.value is OptionGroup<DatabaseOptions> }
        guard needsDatabase else { return }
        let name = (["orcastra"] + words).joined(separator: " ")
        throw CLIFailure(
            message: "`\(name)` cannot go over the HTTP API (--api-url or ORCASTRA_API_URL): it needs a database connection. Run it where the database is reachable (--database-url), without --api-url. Over HTTP work: submit, task show|list|wait|events|cancel (by id or by filters), step show|retry|resolve, template list|show|register, worker list, schedule create|apply|list|show|pause|resume|delete|trigger.",
            exitCode: .usage)
    }
}

/// A command that works over the HTTP API too; `refusalOverHTTP` names a use of it that does not.
protocol WorksOverHTTP {
    func refusalOverHTTP() -> String?
}

extension WorksOverHTTP {
    func refusalOverHTTP() -> String? { nil }
}
