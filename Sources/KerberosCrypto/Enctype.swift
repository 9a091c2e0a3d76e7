/// The Kerberos encryption types KerberosCrypto implements: the aes-sha1 profiles of RFC 3962 and
/// the aes-sha2 profiles of RFC 8009.
package enum Enctype: Int32, Sendable, CaseIterable, CustomStringConvertible {
    /// aes128-cts-hmac-sha1-96 (RFC 3962).
    case aes128CtsHmacSha1_96 = 17
    /// aes256-cts-hmac-sha1-96 (RFC 3962).
    case aes256CtsHmacSha1_96 = 18
    /// aes128-cts-hmac-sha256-128 (RFC 8009).
    case aes128CtsHmacSha256_128 = 19
    /// aes256-cts-hmac-sha384-192 (RFC 8009).
    case aes256CtsHmacSha384_192 = 20

    /// The name used by krb5.conf, kadmin and RFC 8009's string-to-key salt.
    package var name: String {
        switch self {
        case .aes128CtsHmacSha1_96: "aes128-cts-hmac-sha1-96"
        case .aes256CtsHmacSha1_96: "aes256-cts-hmac-sha1-96"
        case .aes128CtsHmacSha256_128: "aes128-cts-hmac-sha256-128"
        case .aes256CtsHmacSha384_192: "aes256-cts-hmac-sha384-192"
        }
    }

    package var description: String { "\(name) (\(rawValue))" }

    /// Length in octets of a protocol key (and of Ke).
    package var keyLength: Int {
        switch self {
        case .aes128CtsHmacSha1_96, .aes128CtsHmacSha256_128: 16
        case .aes256CtsHmacSha1_96, .aes256CtsHmacSha384_192: 32
        }
    }

    /// Length in octets of the truncated HMAC appended to ciphertexts and used as checksum.
    package var macLength: Int {
        switch self {
        case .aes128CtsHmacSha1_96, .aes256CtsHmacSha1_96: 12
        case .aes128CtsHmacSha256_128: 16
        case .aes256CtsHmacSha384_192: 24
        }
    }

    /// Default PBKDF2 iteration count of string-to-key (RFC 3962: 4096, RFC 8009: 32768).
    package var defaultIterations: Int { isRFC8009 ? 32768 : 4096 }

    /// Whether this is an RFC 8009 (encrypt-then-MAC, KDF-HMAC-SHA2) enctype.
    var isRFC8009: Bool { self == .aes128CtsHmacSha256_128 || self == .aes256CtsHmacSha384_192 }

    /// OpenSSL digest name of the HMAC.
    var digestName: String {
        switch self {
        case .aes128CtsHmacSha1_96, .aes256CtsHmacSha1_96: "SHA1"
        case .aes128CtsHmacSha256_128: "SHA256"
        case .aes256CtsHmacSha384_192: "SHA384"
        }
    }

    /// Length of Ki and Kc: the key length for RFC 3962, the MAC length for RFC 8009.
    var integrityKeyLength: Int { isRFC8009 ? macLength : keyLength }
}
