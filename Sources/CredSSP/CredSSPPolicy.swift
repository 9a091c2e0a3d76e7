import NIOSSL
import WindowsStatus

/// Policy knobs shared by the CredSSP client and server; the defaults are the safe ones.
public struct CredSSPPolicy: Sendable, Hashable {
    /// The lowest protocol version accepted from the peer (default 6: the hash-bound, errorCode-capable version).
    public var minimumVersion: Int
    /// The version this side announces (2...6; default 6).
    public var version: Int
    /// The largest TSRequest accepted, in bytes (default 64 KiB).
    public var maximumMessageBytes: Int
    /// The longest domain, user or password accepted, in UTF-16 code units (default 256).
    public var maximumStringUTF16Units: Int
    /// TLS versions allowed (default 1.2 through 1.3).
    public var minimumTLSVersion: TLSVersion
    public var maximumTLSVersion: TLSVersion

    public init(minimumVersion: Int = 6, version: Int = 6, maximumMessageBytes: Int = 64 * 1024,
                maximumStringUTF16Units: Int = 256, minimumTLSVersion: TLSVersion = .tlsv12,
                maximumTLSVersion: TLSVersion = .tlsv13) {
        self.minimumVersion = minimumVersion
        self.version = version
        self.maximumMessageBytes = maximumMessageBytes
        self.maximumStringUTF16Units = maximumStringUTF16Units
        self.minimumTLSVersion = minimumTLSVersion
        self.maximumTLSVersion = maximumTLSVersion
    }

    /// The versions this implementation speaks.
    public static let supportedVersions = 2...6

    func validate() throws {
        guard Self.supportedVersions.contains(version), Self.supportedVersions.contains(minimumVersion),
              minimumVersion <= version
        else {
            throw CredSSPError(.versionRefused, .invalidParameter,
                               "Policy versions must satisfy 2 ≤ minimumVersion (\(minimumVersion)) ≤ version (\(version)) ≤ 6")
        }
        guard maximumMessageBytes > 0, maximumStringUTF16Units > 0 else {
            throw CredSSPError(.sizeLimitExceeded, .invalidParameter, "Policy size limits must be positive")
        }
    }

    /// Whether `errorCode` may be sent at `version` ([MS-CSSP]: versions 3, 4 and 6 and later; 5 has none).
    static func errorCodeAllowed(version: Int) -> Bool { version == 3 || version == 4 || version >= 6 }
}

/// How the client checks the server's TLS certificate.
public enum CredSSPServerVerification: Sendable, Hashable {
    /// Verify the chain against these CA certificates (PEM or DER file) and the host name.
    case certificateAuthorities(caFile: String, hostname: String)
    /// Accept only a certificate whose DER SubjectPublicKeyInfo has this SHA-256 digest.
    case pinnedPublicKeySHA256([UInt8])
    /// Accept any certificate. Insecure: the pubKeyAuth binding then only proves the key matches the TLS session.
    case insecureAcceptAny
}
