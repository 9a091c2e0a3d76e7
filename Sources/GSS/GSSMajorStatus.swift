/// A GSS major status, decoded into its three fields (RFC 2744 §3.9.1).
public struct GSSMajorStatus: Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt32

    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// The routine error field (bits 16–23), 0 when none.
    public var routineError: UInt32 { (rawValue >> 16) & 0xFF }
    /// The calling error field (bits 24–31), 0 when none.
    public var callingError: UInt32 { (rawValue >> 24) & 0xFF }
    /// The supplementary information bits (bits 0–15).
    public var supplementary: UInt32 { rawValue & 0xFFFF }
    /// True when a routine or calling error is set (`GSS_ERROR`).
    public var isError: Bool { rawValue & 0xFFFF_0000 != 0 }

    /// `GSS_S_BAD_SIG`, `GSS_S_FAILURE`, … or nil when no routine error is set.
    public var routineErrorName: String? {
        let names = ["BAD_MECH", "BAD_NAME", "BAD_NAMETYPE", "BAD_BINDINGS", "BAD_STATUS", "BAD_SIG",
                     "NO_CRED", "NO_CONTEXT", "DEFECTIVE_TOKEN", "DEFECTIVE_CREDENTIAL",
                     "CREDENTIALS_EXPIRED", "CONTEXT_EXPIRED", "FAILURE", "BAD_QOP", "UNAUTHORIZED",
                     "UNAVAILABLE", "DUPLICATE_ELEMENT", "NAME_NOT_MN", "BAD_MECH_ATTR"]
        let r = Int(routineError)
        guard r > 0 else { return nil }
        return r <= names.count ? "GSS_S_" + names[r - 1] : "GSS_S_ROUTINE_ERROR_\(r)"
    }

    /// `GSS_S_CALL_INACCESSIBLE_READ`, … or nil when no calling error is set.
    public var callingErrorName: String? {
        switch callingError {
        case 0: nil
        case 1: "GSS_S_CALL_INACCESSIBLE_READ"
        case 2: "GSS_S_CALL_INACCESSIBLE_WRITE"
        case 3: "GSS_S_CALL_BAD_STRUCTURE"
        default: "GSS_S_CALLING_ERROR_\(callingError)"
        }
    }

    /// Names of the supplementary bits set, for example `["GSS_S_DUPLICATE_TOKEN"]`.
    public var supplementaryNames: [String] {
        let names = ["GSS_S_CONTINUE_NEEDED", "GSS_S_DUPLICATE_TOKEN", "GSS_S_OLD_TOKEN",
                     "GSS_S_UNSEQ_TOKEN", "GSS_S_GAP_TOKEN"]
        return names.indices.filter { supplementary & (1 << UInt32($0)) != 0 }.map { names[$0] }
    }

    /// All names, for example `GSS_S_FAILURE` or `GSS_S_COMPLETE | GSS_S_DUPLICATE_TOKEN`.
    public var description: String {
        var parts = [callingErrorName, routineErrorName].compactMap { $0 }
        if parts.isEmpty { parts.append("GSS_S_COMPLETE") }
        return (parts + supplementaryNames).joined(separator: " | ")
    }

    // Routine errors.
    public static let badMech = GSSMajorStatus(rawValue: 1 << 16)
    public static let badName = GSSMajorStatus(rawValue: 2 << 16)
    public static let badNameType = GSSMajorStatus(rawValue: 3 << 16)
    public static let badBindings = GSSMajorStatus(rawValue: 4 << 16)
    public static let badStatus = GSSMajorStatus(rawValue: 5 << 16)
    public static let badSignature = GSSMajorStatus(rawValue: 6 << 16)
    public static let noCredentials = GSSMajorStatus(rawValue: 7 << 16)
    public static let noContext = GSSMajorStatus(rawValue: 8 << 16)
    public static let defectiveToken = GSSMajorStatus(rawValue: 9 << 16)
    public static let defectiveCredential = GSSMajorStatus(rawValue: 10 << 16)
    public static let credentialsExpired = GSSMajorStatus(rawValue: 11 << 16)
    public static let contextExpired = GSSMajorStatus(rawValue: 12 << 16)
    public static let failure = GSSMajorStatus(rawValue: 13 << 16)
    public static let badQOP = GSSMajorStatus(rawValue: 14 << 16)
    public static let unauthorized = GSSMajorStatus(rawValue: 15 << 16)
    public static let unavailable = GSSMajorStatus(rawValue: 16 << 16)
    public static let duplicateElement = GSSMajorStatus(rawValue: 17 << 16)
    public static let nameNotMN = GSSMajorStatus(rawValue: 18 << 16)
    // Calling errors.
    public static let callInaccessibleRead = GSSMajorStatus(rawValue: 1 << 24)
    public static let callBadStructure = GSSMajorStatus(rawValue: 3 << 24)
    // Supplementary bits.
    public static let continueNeeded: UInt32 = 1
    public static let duplicateToken: UInt32 = 2
    public static let oldToken: UInt32 = 4
    public static let unseqToken: UInt32 = 8
    public static let gapToken: UInt32 = 16
}
