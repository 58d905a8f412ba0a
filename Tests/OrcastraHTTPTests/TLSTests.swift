import Foundation
import OrcastraDevDB
import OrcastraTesting
import Testing

/// `orcastra-orchestrator --tls-cert --tls-key`: HTTPS with a self-signed certificate made by
/// `openssl` at test time, and a clear refusal of a missing, unreadable or mismatched file.
@Suite(.timeLimit(.minutes(6))) struct TLSTests {
    /// A self-signed certificate for 127.0.0.1 and its key, and a second key that is not its.
    struct Files {
        let folder: URL
        var certificate: String { folder.appendingPathComponent("cert.pem").path }
        var key: String { folder.appendingPathComponent("key.pem").path }
        var otherKey: String { folder.appendingPathComponent("other.pem").path }

        init() throws {
            folder = FileManager.default.temporaryDirectory.appendingPathComponent("api-tls-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try Self.openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", certificate, "-days", "1",
                              "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"])
            try Self.openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", otherKey])
        }

        static func openssl(_ arguments: [String]) throws {
            let outcome = try ProcessRunner.run("/usr/bin/openssl", arguments)
            guard outcome.status == 0 else { throw POSIXError(.EINVAL) }
        }
    }

    @Test func servesHTTPS() async throws {
        let files = try Files()
        defer { try? FileManager.default.removeItem(at: files.folder) }
        let api = try await APIFixture(start: false)
        defer { Task { await api.shutdown() } }
        let https = "https://127.0.0.1:\(api.port)"
        _ = try api.cluster.orchestrator(["--poll-interval", "200ms", "--http-address", "127.0.0.1:\(api.port)",
                                          "--tls-cert", files.certificate, "--tls-key", files.key])
        // curl trusts the certificate it is given, and only that.
        var health: ProcessRunner.Outcome?
        for _ in 0..<300 {
            let outcome = try ProcessRunner.run("/usr/bin/curl", ["-sS", "--cacert", files.certificate, "\(https)/healthz"])
            if outcome.status == 0 { health = outcome; break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(health?.standardOutput.contains(#""up""#) == true, "\(String(describing: health)) \(api.cluster.logs)")
        let untrusted = try ProcessRunner.run("/usr/bin/curl", ["-sS", "\(https)/healthz"])
        #expect(untrusted.status != 0, "a client without the certificate refuses it")
        let plain = try ProcessRunner.run("/usr/bin/curl", ["-sS", "http://127.0.0.1:\(api.port)/healthz"])
        #expect(plain.status != 0 || !plain.standardOutput.contains("up"), "plain HTTP is not served on the TLS port")

        // The CLI trusts the system's CAs: a self-signed certificate is refused, saying why…
        let token = try await api.admin()
        let listed = try await CommandLineTool("orcastra").run(["--api-url", https, "--api-token", token, "template", "list"])
        #expect(listed.status == 69 && listed.standardError.contains("Cannot reach the Orcastra API at \(https)"), "\(listed.output)")
        #expect(listed.standardError.lowercased().contains("certificate"), "\(listed.output)")
        // …unless it is told to trust it, by the flag or the variable.
        let trusted = try await CommandLineTool("orcastra").run(["--api-url", https, "--api-token", token, "--api-cacert", files.certificate,
                                                                 "template", "list"])
        #expect(trusted.status == 0 && trusted.standardOutput.contains("No templates"), "\(trusted.output)")
        let fromVariable = try await CommandLineTool("orcastra").run(["--api-url", https, "--api-token", token, "task", "list"],
                                                                     environment: ["ORCASTRA_API_CACERT": files.certificate])
        #expect(fromVariable.status == 0, "\(fromVariable.output)")
        // A file that is not a certificate is named before anything is sent.
        let wrong = try await CommandLineTool("orcastra").run(["--api-url", https, "--api-token", token, "--api-cacert", files.key, "task", "list"])
        #expect(wrong.status == 64 && wrong.standardError.contains("--api-cacert \(files.key): holds no PEM certificate"), "\(wrong.output)")
        let missing = try await CommandLineTool("orcastra").run(["--api-url", https, "--api-token", token, "task", "list"],
                                                                environment: ["ORCASTRA_API_CACERT": "/nonexistent/ca.pem"])
        #expect(missing.status == 64 && missing.standardError.contains("ORCASTRA_API_CACERT /nonexistent/ca.pem: no such file"), "\(missing.output)")
    }

    @Test func refusesBadFiles() async throws {
        let files = try Files()
        defer { try? FileManager.default.removeItem(at: files.folder) }
        let garbage = files.folder.appendingPathComponent("garbage.pem").path
        try "not a certificate\n".write(toFile: garbage, atomically: true, encoding: .utf8)
        let unreadable = files.folder.appendingPathComponent("unreadable.pem").path
        try FileManager.default.copyItem(atPath: files.key, toPath: unreadable)
        try FileManager.default.setAttributes([.posixPermissions: 0], ofItemAtPath: unreadable)
        let missing = files.folder.appendingPathComponent("missing.pem").path
        let address = ["--http-address", "127.0.0.1:1", "--database-url", "postgresql://nobody@127.0.0.1:1/none"]
        var cases: [([String], String)] = [
            (["--tls-cert", missing, "--tls-key", files.key], "--tls-cert \(missing): no such file"),
            (["--tls-cert", files.certificate, "--tls-key", missing], "--tls-key \(missing): no such file"),
            (["--tls-cert", garbage, "--tls-key", files.key], "--tls-cert \(garbage) holds no PEM certificate"),
            (["--tls-cert", files.certificate, "--tls-key", garbage], "--tls-key \(garbage) holds no unencrypted PEM private key"),
            (["--tls-cert", files.certificate, "--tls-key", files.otherKey], "is not the private key of the certificate"),
            (["--tls-cert", files.certificate], "--tls-cert and --tls-key go together"),
        ]
        // root reads any file: the permission case only means something for other users.
        if getuid() != 0 { cases.append((["--tls-cert", files.certificate, "--tls-key", unreadable], "cannot be read by this process")) }
        let noAddress = try await CommandLineTool("orcastra-orchestrator").run(
            ["--database-url", "postgresql://nobody@127.0.0.1:1/none", "--tls-cert", files.certificate, "--tls-key", files.key],
            environment: ["ORCASTRA_HTTP_ADDRESS": ""])
        #expect(noAddress.status == 64 && noAddress.standardError.contains("need --http-address"), "\(noAddress.output)")
        for (arguments, message) in cases {
            let outcome = try await CommandLineTool("orcastra-orchestrator").run(address + arguments)
            #expect(outcome.status == 64, "\(arguments): \(outcome.output)")
            #expect(outcome.standardError.contains(message), "\(arguments): \(outcome.output)")
        }
    }
}
