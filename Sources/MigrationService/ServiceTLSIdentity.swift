import Foundation
import NIOSSL

/// The RSA certificate and key a daemon's CredSSP listeners (management and migration) present in TLS.
///
/// CredSSP binds the key to the inner Kerberos context (`pubKeyAuth`, sealed with the Kerberos session key), so a
/// self-signed certificate is enough: a man in the middle cannot produce the binding without the service's keys.
public struct ServiceTLSIdentity: Sendable {
    public let certificateChain: [NIOSSLCertificate]
    public let privateKey: NIOSSLPrivateKey

    public init(certificateChain: [NIOSSLCertificate], privateKey: NIOSSLPrivateKey) {
        self.certificateChain = certificateChain
        self.privateKey = privateKey
    }

    /// Loads a PEM certificate (chain, leaf first) and its PEM private key.
    public static func load(certificate: String, privateKey: String) throws(MigrationServiceError) -> ServiceTLSIdentity {
        do {
            return ServiceTLSIdentity(certificateChain: try NIOSSLCertificate.fromPEMFile(certificate),
                                      privateKey: try NIOSSLPrivateKey(file: privateKey, format: .pem))
        } catch {
            throw .configuration("Cannot load the TLS certificate \(certificate) / key \(privateKey): \(error)", stage: .source)
        }
    }

    /// A fresh self-signed RSA-2048 certificate for `commonName`, made with `openssl` in `directory` (the key file is
    /// removed once loaded: the key then lives in memory only).
    public static func generate(commonName: String, in directory: String) throws(MigrationServiceError) -> ServiceTLSIdentity {
        let base = directory + "/tls-\(UUID().uuidString)"
        defer {
            unlink(base + ".key")
            unlink(base + ".pem")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=\(commonName)",
                             "-keyout", base + ".key", "-out", base + ".pem"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
            process.waitUntilExit()
        } catch {
            throw .configuration("Cannot run openssl to make a TLS certificate: \(error)", stage: .source)
        }
        guard process.terminationStatus == 0 else {
            throw .configuration("openssl could not make a TLS certificate in \(directory) (exit \(process.terminationStatus))",
                                 stage: .source)
        }
        return try load(certificate: base + ".pem", privateKey: base + ".key")
    }

    /// The configured identity, or a generated one; `openssl` runs on a thread of its own, off the event loops and
    /// Swift's cooperative pool.
    static func forHost(_ configuration: HostConfiguration) async throws(MigrationServiceError) -> ServiceTLSIdentity {
        if let certificate = configuration.tlsCertificate, let key = configuration.tlsPrivateKey {
            return try load(certificate: certificate, privateKey: key)
        }
        let (name, directory) = (configuration.fqdn, configuration.ccacheDirectory)
        let result: Result<ServiceTLSIdentity, MigrationServiceError> = await withCheckedContinuation { done in
            Thread {
                done.resume(returning: Result { () throws(MigrationServiceError) in
                    try generate(commonName: name, in: directory)
                })
            }.start()
        }
        return try result.get()
    }
}
