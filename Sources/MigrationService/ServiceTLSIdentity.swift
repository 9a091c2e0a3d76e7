import _CryptoExtras
import Foundation
import NIOSSL
import X509

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

    /// A fresh self-signed RSA-2048 certificate for `commonName`, made in this process (swift-crypto's RSA,
    /// swift-certificates' X.509): nothing is written to disk, so a daemon killed at any point leaves no key file.
    /// The key lives in BoringSSL (which zeroes it when freed) and in swift-nio-ssl's key object only.
    public static func generate(commonName: String, validity: Duration = .seconds(30 * 86_400))
        throws(MigrationServiceError) -> ServiceTLSIdentity
    {
        do {
            let rsa = try _RSA.Signing.PrivateKey(keySize: .bits2048)
            let key = Certificate.PrivateKey(rsa)
            let name = try DistinguishedName { CommonName(commonName) }
            let now = Date()
            let certificate = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: key.publicKey,
                notValidBefore: now - 3600, notValidAfter: now + Double(validity.components.seconds),
                issuer: name, subject: name, signatureAlgorithm: .sha256WithRSAEncryption,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    KeyUsage(digitalSignature: true, keyEncipherment: true)
                    try ExtendedKeyUsage([.serverAuth])
                    SubjectAlternativeNames([.dnsName(commonName)])
                },
                issuerPrivateKey: key)
            var keyDER = Array(rsa.derRepresentation)
            defer { keyDER.withUnsafeMutableBytes { for index in $0.indices { $0[index] = 0 } } }
            return ServiceTLSIdentity(
                certificateChain: [try NIOSSLCertificate(bytes: try certificate.serializeAsPEM().derBytes, format: .der)],
                privateKey: try NIOSSLPrivateKey(bytes: keyDER, format: .der))
        } catch {
            throw .configuration("Cannot make a TLS certificate for \(commonName): \(error)", stage: .source)
        }
    }

    /// The configured identity (two file reads), or a generated one (the RSA key generation takes tens of
    /// milliseconds); either runs on NIO's blocking thread pool (``FileWork``), off the event loops and Swift's
    /// cooperative pool.
    static func forHost(_ configuration: HostConfiguration) async throws(MigrationServiceError) -> ServiceTLSIdentity {
        let configured = configuration.tlsCertificate.flatMap { certificate in configuration.tlsPrivateKey.map { (certificate, $0) } }
        let name = configuration.fqdn
        return try await FileWork.run(.source) { () throws(MigrationServiceError) in
            if let (certificate, key) = configured { return try load(certificate: certificate, privateKey: key) }
            return try generate(commonName: name)
        }
    }
}
