import Crypto
import SwiftASN1
import X509

/// The `pubKeyAuth` values that bind the inner authentication to the TLS server key ([MS-CSSP] 3.1.5).
///
/// Versions 5 and later hash the key with the client nonce (the CVE-2018-0886 fix); earlier versions send the
/// key itself (client) and the key with its first byte incremented (server).
enum PublicKeyBinding {
    /// Unwraps the peer's `pubKeyAuth` with the inner context and requires `expected`. `peer` ("client's" or
    /// "server's") and `mismatch` word the errors (SEC_E_MESSAGE_ALTERED either way).
    static func verify(_ sealed: [UInt8], expected: [UInt8], inner: any CredSSPInnerAuthenticator, peer: String,
                       mismatch: String) throws {
        let actual: [UInt8]
        do {
            actual = try inner.unwrap(sealed)
        } catch {
            throw CredSSPError(.publicKeyMismatch, .messageAltered, "The \(peer) pubKeyAuth cannot be decrypted: \(error)")
        }
        guard actual == expected else { throw CredSSPError(.publicKeyMismatch, .messageAltered, mismatch) }
    }

    static let clientMagic = Array("CredSSP Client-To-Server Binding Hash\0".utf8)
    static let serverMagic = Array("CredSSP Server-To-Client Binding Hash\0".utf8)

    /// What the client encrypts into `pubKeyAuth`.
    static func client(version: Int, nonce: [UInt8]?, subjectPublicKey: [UInt8]) -> [UInt8] {
        if version >= 5, let nonce {
            return Array(SHA256.hash(data: clientMagic + nonce + subjectPublicKey))
        }
        return subjectPublicKey
    }

    /// What the server encrypts into its `pubKeyAuth` answer.
    static func server(version: Int, nonce: [UInt8]?, subjectPublicKey: [UInt8]) -> [UInt8] {
        if version >= 5, let nonce {
            return Array(SHA256.hash(data: serverMagic + nonce + subjectPublicKey))
        }
        var key = subjectPublicKey
        if !key.isEmpty { key[0] = key[0] &+ 1 }
        return key
    }
}

/// The key parts of an X.509 certificate that CredSSP needs.
public struct CertificatePublicKey: Sendable, Hashable {
    /// The whole DER `SubjectPublicKeyInfo` (what pins hash).
    public let subjectPublicKeyInfo: [UInt8]
    /// The `subjectPublicKey` BIT STRING's bits (for RSA, the DER `RSAPublicKey`): what `pubKeyAuth` binds.
    public let subjectPublicKey: [UInt8]

    /// Parses a DER certificate (swift-certificates' `Certificate`).
    public init(certificateDER: [UInt8]) throws {
        do {
            let key = try Certificate(derEncoded: certificateDER).publicKey
            var serializer = DER.Serializer()
            try serializer.serialize(key)
            self.subjectPublicKeyInfo = serializer.serializedBytes
            self.subjectPublicKey = Array(key.subjectPublicKeyInfoBytes)
        } catch {
            throw CredSSPError(.tls, .illegalMessage, "The server certificate cannot be parsed: \(error)")
        }
    }

    /// SHA-256 of the DER `SubjectPublicKeyInfo`, for pinning.
    public var sha256: [UInt8] { Array(SHA256.hash(data: subjectPublicKeyInfo)) }
}
