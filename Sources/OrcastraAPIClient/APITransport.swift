import AsyncHTTPClient
import Foundation
import NIOCore
import NIOSSL
import OpenAPIAsyncHTTPClient
import Synchronization

/// The HTTP client under the generated client: AsyncHTTPClient, which hands a response's body
/// over as it arrives (the event stream `--wait` follows) and trusts, besides the system's CAs,
/// the certificates of a private CA (`--api-cacert`).
enum APITransport {
    /// Clients by CA file, made once and kept for the life of the process (a CLI command): an
    /// AsyncHTTPClient must be shut down before it goes away, and these never go away.
    private static let clients = Mutex<[String: HTTPClient]>([:])

    /// The transport for one API; `caCertificates` are PEM certificates to trust besides the system's.
    ///
    /// AsyncHTTPClient retries a failed connection until the connect timeout, and without one until
    /// the request's own (a minute): a CLI told a wrong `--api-url` would sit silent that long. Five
    /// seconds still rides out a flaky network, then says the API cannot be reached.
    static func make(caCertificates: APICACertificates?) -> AsyncHTTPClientTransport {
        let client = clients.withLock { clients in
            let key = caCertificates?.path ?? ""
            if let client = clients[key] { return client }
            var configuration = HTTPClient.Configuration()
            configuration.timeout = .init(connect: .seconds(5))
            if let caCertificates {
                var tls = TLSConfiguration.makeClientConfiguration()
                tls.additionalTrustRoots = [.certificates(caCertificates.certificates)]
                configuration.tlsConfiguration = tls
            }
            let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
            clients[key] = client
            return client
        }
        return AsyncHTTPClientTransport(configuration: .init(client: client))
    }

    /// A failure to reach the server in a few words (`connection refused (errno 111)`, a TLS
    /// handshake's reason), not the type dumps the errors print by default.
    static func reason(_ error: any Error) -> String {
        switch error {
        // Its description garbles the reason (`connection reset (error set): Connection refused)`).
        case let error as IOError: return Self.lowercasedFirst(String(cString: strerror(error.errnoCode))) + " (errno \(error.errnoCode))"
        case let error as NIOSSLError: return "TLS: \(error)"
        case let error as HTTPClientError: return "\(error)"
        default: return "\(error)"
        }
    }

    private static func lowercasedFirst(_ text: String) -> String {
        text.prefix(1).lowercased() + text.dropFirst()
    }
}

/// PEM certificates read from `--api-cacert FILE` (or `ORCASTRA_API_CACERT`).
public struct APICACertificates: Sendable {
    public let path: String
    let certificates: [NIOSSLCertificate]

    /// `source` names where the path came from, for the message.
    public init(path: String, source: String) throws(APICACertificateError) {
        guard FileManager.default.fileExists(atPath: path) else {
            throw APICACertificateError(source: source, path: path, problem: "no such file")
        }
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw APICACertificateError(source: source, path: path, problem: "cannot be read by this process")
        }
        let loaded = Result { try NIOSSLCertificate.fromPEMFile(path) }
        guard case .success(let certificates) = loaded, !certificates.isEmpty else {
            throw APICACertificateError(source: source, path: path, problem: "holds no PEM certificate")
        }
        self.path = path
        self.certificates = certificates
    }
}

public struct APICACertificateError: Error, Sendable, CustomStringConvertible {
    public var source: String
    public var path: String
    public var problem: String
    public var description: String {
        "\(source) \(path): \(problem). Give the PEM file of the CA that signed the API's certificate (-----BEGIN CERTIFICATE-----)."
    }
}
