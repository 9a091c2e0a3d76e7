import WindowsStatus

/// Why a KerberosCrypto operation failed, with the GSS major status MIT would return and the
/// Windows status SSPI would report for the same condition.
package enum KerberosCryptoError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Integrity check failed (checksum/HMAC mismatch, wrong direction): GSS_S_BAD_SIG.
    case badSignature(String)
    /// Token malformed (wrong TOK_ID, filler, lengths, header copy): GSS_S_DEFECTIVE_TOKEN.
    case defectiveToken(String)
    /// A sequence number already received (replay): GSS_S_DUPLICATE_TOKEN.
    case duplicateToken(sequenceNumber: UInt64)
    /// A sequence number too old for the replay window: GSS_S_OLD_TOKEN.
    case oldToken(sequenceNumber: UInt64)
    /// A token arrived after a later one: GSS_S_UNSEQ_TOKEN.
    case unseqToken(sequenceNumber: UInt64)
    /// One or more earlier tokens are missing: GSS_S_GAP_TOKEN.
    case gapToken(sequenceNumber: UInt64)
    /// Key material of the wrong length or enctype.
    case invalidKey(String)
    /// An output buffer is smaller than `needed` octets.
    case bufferTooSmall(needed: Int)
    /// OpenSSL's libcrypto reported a failure.
    case libcrypto(String)

    /// GSS-API major status (RFC 2744 §3.9.1): routine errors in bits 16–23, supplementary bits 0–4.
    package var gssMajorStatus: UInt32 {
        switch self {
        case .badSignature: 6 << 16            // GSS_S_BAD_SIG
        case .defectiveToken: 9 << 16          // GSS_S_DEFECTIVE_TOKEN
        case .duplicateToken: 1 << 1           // GSS_S_DUPLICATE_TOKEN
        case .oldToken: 1 << 2                 // GSS_S_OLD_TOKEN
        case .unseqToken: 1 << 3               // GSS_S_UNSEQ_TOKEN
        case .gapToken: 1 << 4                 // GSS_S_GAP_TOKEN
        case .invalidKey, .bufferTooSmall, .libcrypto: 13 << 16  // GSS_S_FAILURE
        }
    }

    /// The status Windows SSPI reports for the same condition.
    package var windowsStatus: WindowsStatus {
        switch self {
        case .badSignature: .messageAltered                                       // 0x8009030F
        case .defectiveToken: .invalidToken                                       // 0x80090308
        case .duplicateToken, .oldToken, .unseqToken, .gapToken: .outOfSequence   // 0x80090310
        case .invalidKey: .invalidParameter
        case .bufferTooSmall: .bufferTooSmall
        case .libcrypto: .internalError
        }
    }

    package var description: String {
        let what: String = switch self {
        case .badSignature(let why): "bad signature: \(why)"
        case .defectiveToken(let why): "defective token: \(why)"
        case .duplicateToken(let n): "duplicate token (sequence number \(n))"
        case .oldToken(let n): "token too old for the replay window (sequence number \(n))"
        case .unseqToken(let n): "token out of sequence (sequence number \(n))"
        case .gapToken(let n): "earlier tokens missing (sequence number \(n))"
        case .invalidKey(let why): "invalid key: \(why)"
        case .bufferTooSmall(let n): "output buffer too small: \(n) octets needed"
        case .libcrypto(let why): "libcrypto: \(why)"
        }
        return "\(what) [\(windowsStatus.symbol) \(windowsStatus.hex)]"
    }
}
