import Foundation
import NIOSSL

/// The certificate chain and private key `orcastra-orchestrator --tls-cert --tls-key` name (PEM),
/// read and checked before anything starts, so a wrong file is one clear sentence, not a
/// handshake failure later.
public struct TLSFiles: Sendable {
    public var certificatePath: String
    public var keyPath: String

    public init(certificatePath: String, keyPath: String) {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
    }

    /// The server's TLS configuration, or the first thing wrong with the files.
    public func configuration() throws(TLSFilesError) -> TLSConfiguration {
        try Self.readable(certificatePath, option: "--tls-cert")
        try Self.readable(keyPath, option: "--tls-key")
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificatePath)
        } catch {
            throw TLSFilesError("--tls-cert \(certificatePath) holds no PEM certificate (-----BEGIN CERTIFICATE-----): \(error). Give the server's certificate, then any intermediates, in PEM.")
        }
        guard !chain.isEmpty else {
            throw TLSFilesError("--tls-cert \(certificatePath) holds no PEM certificate (-----BEGIN CERTIFICATE-----). Give the server's certificate, then any intermediates, in PEM.")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
        } catch {
            throw TLSFilesError("--tls-key \(keyPath) holds no unencrypted PEM private key (-----BEGIN PRIVATE KEY-----): \(error). An encrypted key must be decrypted first (openssl pkey -in KEY -out PLAIN).")
        }
        let configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) },
                                                                    privateKey: .privateKey(key))
        // BoringSSL checks that the key belongs to the first certificate when a context is made.
        do {
            _ = try NIOSSLContext(configuration: configuration)
        } catch {
            throw TLSFilesError("--tls-key \(keyPath) is not the private key of the certificate in --tls-cert \(certificatePath) (\(error)). Give the key the certificate was made for.")
        }
        return configuration
    }

    private static func readable(_ path: String, option: String) throws(TLSFilesError) {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            throw TLSFilesError("\(option) \(path): no such file.")
        }
        guard !isFolder.boolValue else { throw TLSFilesError("\(option) \(path) is a folder; give the PEM file.") }
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw TLSFilesError("\(option) \(path) cannot be read by this process (permissions); let the orchestrator's user read it.")
        }
    }
}

public struct TLSFilesError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
