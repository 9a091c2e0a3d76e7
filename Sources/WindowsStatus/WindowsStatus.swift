import Foundation

/// A Windows status code (an HRESULT) with its symbolic name and the message text Windows shows.
///
/// Texts come from the Windows message tables (`winerror.h`), so an outcome printed by this
/// package reads exactly as the Windows event or error dialog would. The seed article's error,
/// for instance, is ``noCredentials``: `No credentials are available in the security package
/// (0x8009030E)`.
public struct WindowsStatus: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The 32-bit HRESULT, for example `0x8009030E`.
    public let code: UInt32
    /// The `winerror.h` symbol, for example `SEC_E_NO_CREDENTIALS`.
    public let symbol: String
    /// The message text as Windows formats it (without the code).
    public let text: String

    public init(code: UInt32, symbol: String, text: String) {
        self.code = code
        self.symbol = symbol
        self.text = text
    }

    /// `0x8009030E` — eight upper-case hex digits with a `0x` prefix, as Windows prints it.
    public var hex: String {
        let digits = String(code, radix: 16, uppercase: true)
        return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }

    /// `No credentials are available in the security package (0x8009030E).`
    ///
    /// The form Hyper-V uses inside its migration error: text, code in parentheses, a full stop.
    public var windowsMessage: String {
        var t = text
        while t.hasSuffix(".") { t.removeLast() }
        return "\(t) (\(hex))."
    }

    public var description: String { "\(symbol) \(hex): \(text)" }

    /// True when the HRESULT has the severity (failure) bit set.
    public var isFailure: Bool { code & 0x8000_0000 != 0 }

    /// The known status with this code, if the table has it.
    public static func known(_ code: UInt32) -> WindowsStatus? { table[code] }

    /// Parses `0x8009030E`, `8009030E`, a decimal number, or a symbol such as `SEC_E_NO_CREDENTIALS`.
    public static func parse(_ string: String) -> WindowsStatus? {
        let s = string.trimmingCharacters(in: .whitespaces)
        if let bySymbol = all.first(where: { $0.symbol.caseInsensitiveCompare(s) == .orderedSame }) {
            return bySymbol
        }
        var digits = Substring(s)
        if digits.lowercased().hasPrefix("0x") { digits = digits.dropFirst(2) }
        if let v = UInt32(digits, radix: 16), s.lowercased().hasPrefix("0x") || digits.count == 8 {
            return table[v] ?? WindowsStatus(code: v, symbol: "HRESULT", text: "Unknown status")
        }
        if let v = UInt32(s) { return table[v] ?? WindowsStatus(code: v, symbol: "HRESULT", text: "Unknown status") }
        return nil
    }
}

extension WindowsStatus {
    // MARK: Security package (SSPI) statuses
    public static let insufficientMemory = WindowsStatus(code: 0x8009_0300, symbol: "SEC_E_INSUFFICIENT_MEMORY", text: "Not enough memory is available to complete this request")
    public static let invalidHandle = WindowsStatus(code: 0x8009_0301, symbol: "SEC_E_INVALID_HANDLE", text: "The handle specified is invalid")
    public static let unsupportedFunction = WindowsStatus(code: 0x8009_0302, symbol: "SEC_E_UNSUPPORTED_FUNCTION", text: "The function requested is not supported")
    public static let targetUnknown = WindowsStatus(code: 0x8009_0303, symbol: "SEC_E_TARGET_UNKNOWN", text: "The specified target is unknown or unreachable")
    public static let internalError = WindowsStatus(code: 0x8009_0304, symbol: "SEC_E_INTERNAL_ERROR", text: "The Local Security Authority cannot be contacted")
    public static let packageNotFound = WindowsStatus(code: 0x8009_0305, symbol: "SEC_E_SECPKG_NOT_FOUND", text: "The requested security package does not exist")
    public static let invalidToken = WindowsStatus(code: 0x8009_0308, symbol: "SEC_E_INVALID_TOKEN", text: "The token supplied to the function is invalid")
    public static let qopNotSupported = WindowsStatus(code: 0x8009_030A, symbol: "SEC_E_QOP_NOT_SUPPORTED", text: "The per-message Quality of Protection is not supported by the security package")
    public static let logonDenied = WindowsStatus(code: 0x8009_030C, symbol: "SEC_E_LOGON_DENIED", text: "The logon attempt failed")
    public static let unknownCredentials = WindowsStatus(code: 0x8009_030D, symbol: "SEC_E_UNKNOWN_CREDENTIALS", text: "The credentials supplied to the package were not recognized")
    /// The seed article's error: `No credentials are available in the security package (0x8009030E)`.
    public static let noCredentials = WindowsStatus(code: 0x8009_030E, symbol: "SEC_E_NO_CREDENTIALS", text: "No credentials are available in the security package")
    public static let messageAltered = WindowsStatus(code: 0x8009_030F, symbol: "SEC_E_MESSAGE_ALTERED", text: "The message or signature supplied for verification has been altered")
    public static let outOfSequence = WindowsStatus(code: 0x8009_0310, symbol: "SEC_E_OUT_OF_SEQUENCE", text: "The message supplied for verification is out of sequence")
    public static let noAuthenticatingAuthority = WindowsStatus(code: 0x8009_0311, symbol: "SEC_E_NO_AUTHENTICATING_AUTHORITY", text: "No authority could be contacted for authentication.")
    public static let contextExpired = WindowsStatus(code: 0x8009_0317, symbol: "SEC_E_CONTEXT_EXPIRED", text: "The context has expired and can no longer be used.")
    public static let incompleteMessage = WindowsStatus(code: 0x8009_0318, symbol: "SEC_E_INCOMPLETE_MESSAGE", text: "The supplied message is incomplete.  The signature was not verified.")
    public static let incompleteCredentials = WindowsStatus(code: 0x8009_0320, symbol: "SEC_E_INCOMPLETE_CREDENTIALS", text: "The credentials supplied were not complete, and could not be verified. The context could not be initialized.")
    public static let bufferTooSmall = WindowsStatus(code: 0x8009_0321, symbol: "SEC_E_BUFFER_TOO_SMALL", text: "The buffers supplied to a function was too small.")
    public static let wrongPrincipal = WindowsStatus(code: 0x8009_0322, symbol: "SEC_E_WRONG_PRINCIPAL", text: "The target principal name is incorrect.")
    public static let timeSkew = WindowsStatus(code: 0x8009_0324, symbol: "SEC_E_TIME_SKEW", text: "The clocks on the client and server machines are skewed.")
    public static let untrustedRoot = WindowsStatus(code: 0x8009_0325, symbol: "SEC_E_UNTRUSTED_ROOT", text: "The certificate chain was issued by an authority that is not trusted.")
    public static let illegalMessage = WindowsStatus(code: 0x8009_0326, symbol: "SEC_E_ILLEGAL_MESSAGE", text: "The message received was unexpected or badly formatted.")
    public static let encryptFailure = WindowsStatus(code: 0x8009_0329, symbol: "SEC_E_ENCRYPT_FAILURE", text: "The specified data could not be encrypted.")
    public static let decryptFailure = WindowsStatus(code: 0x8009_0330, symbol: "SEC_E_DECRYPT_FAILURE", text: "The specified data could not be decrypted.")
    public static let algorithmMismatch = WindowsStatus(code: 0x8009_0331, symbol: "SEC_E_ALGORITHM_MISMATCH", text: "The client and server cannot communicate, because they do not possess a common algorithm.")
    public static let securityQoSFailed = WindowsStatus(code: 0x8009_0332, symbol: "SEC_E_SECURITY_QOS_FAILED", text: "The security context could not be established due to a failure in the requested quality of service (e.g. mutual authentication or delegation).")
    public static let kdcInvalidRequest = WindowsStatus(code: 0x8009_0340, symbol: "SEC_E_KDC_INVALID_REQUEST", text: "An invalid request was sent to the KDC.")
    public static let kdcUnknownEtype = WindowsStatus(code: 0x8009_0342, symbol: "SEC_E_KDC_UNKNOWN_ETYPE", text: "The encryption type requested is not supported by the KDC.")
    public static let delegationRequired = WindowsStatus(code: 0x8009_0345, symbol: "SEC_E_DELEGATION_REQUIRED", text: "The requested operation cannot be completed. The computer must be trusted for delegation and the current user account must be configured to allow delegation.")
    public static let badBindings = WindowsStatus(code: 0x8009_0346, symbol: "SEC_E_BAD_BINDINGS", text: "Client's supplied SSPI channel bindings were incorrect.")
    public static let noKerbKey = WindowsStatus(code: 0x8009_0348, symbol: "SEC_E_NO_KERB_KEY", text: "No Kerberos key was found.")
    public static let downgradeDetected = WindowsStatus(code: 0x8009_0350, symbol: "SEC_E_DOWNGRADE_DETECTED", text: "The system cannot contact a domain controller to service the authentication request. Please try again later.")
    public static let noS4UProtSupport = WindowsStatus(code: 0x8009_0356, symbol: "SEC_E_NO_S4U_PROT_SUPPORT", text: "The Kerberos subsystem encountered an error. A service for user protocol request was made against a domain controller which does not support service for user.")
    public static let crossRealmDelegationFailure = WindowsStatus(code: 0x8009_0357, symbol: "SEC_E_CROSSREALM_DELEGATION_FAILURE", text: "An attempt was made by this server to make a Kerberos constrained delegation request for a target outside of the server's realm. This is not supported, and indicates a misconfiguration on this server's allowed to delegate to list. Please contact your administrator.")
    public static let invalidParameter = WindowsStatus(code: 0x8009_035D, symbol: "SEC_E_INVALID_PARAMETER", text: "One or more of the parameters passed to the function was invalid.")
    public static let delegationPolicy = WindowsStatus(code: 0x8009_035E, symbol: "SEC_E_DELEGATION_POLICY", text: "The client policy does not allow credential delegation to the target server.")
    public static let policyNTLMOnly = WindowsStatus(code: 0x8009_035F, symbol: "SEC_E_POLICY_NLTM_ONLY", text: "The client policy does not allow credential delegation to the target server with NLTM only authentication.")

    // MARK: Win32 and directory statuses (as HRESULTs)
    public static let accessDenied = WindowsStatus(code: 0x8007_0005, symbol: "E_ACCESSDENIED", text: "Access is denied.")
    public static let notSupported = WindowsStatus(code: 0x8007_0032, symbol: "ERROR_NOT_SUPPORTED", text: "The request is not supported.")
    /// The Hyper-V Virtual Machine Management Service is not installed (no Hyper-V role, rule P3).
    public static let serviceDoesNotExist = WindowsStatus(code: 0x8007_0424, symbol: "ERROR_SERVICE_DOES_NOT_EXIST", text: "The specified service does not exist as an installed service.")
    public static let invalidArgument = WindowsStatus(code: 0x8007_0057, symbol: "E_INVALIDARG", text: "The parameter is incorrect.")
    public static let notFound = WindowsStatus(code: 0x8007_0490, symbol: "ERROR_NOT_FOUND", text: "Element not found.")
    public static let accountDisabled = WindowsStatus(code: 0x8007_0533, symbol: "ERROR_ACCOUNT_DISABLED", text: "Logon failure: account currently disabled.")
    public static let noSuchDomain = WindowsStatus(code: 0x8007_054B, symbol: "ERROR_NO_SUCH_DOMAIN", text: "The specified domain either does not exist or could not be contacted.")
    public static let trustFailure = WindowsStatus(code: 0x8007_06FD, symbol: "ERROR_TRUSTED_RELATIONSHIP_FAILURE", text: "The trust relationship between this workstation and the primary domain failed.")
    public static let dsNoSuchObject = WindowsStatus(code: 0x8007_2030, symbol: "ERROR_DS_NO_SUCH_OBJECT", text: "There is no such object on the server.")
    /// AD's refusal when the caller may not write the attribute (rule P2).
    public static let dsInsufficientAccessRights = WindowsStatus(code: 0x8007_2098, symbol: "ERROR_DS_INSUFF_ACCESS_RIGHTS", text: "Insufficient access rights to perform the operation.")
    public static let dsObjectExists = WindowsStatus(code: 0x8007_2071, symbol: "ERROR_DS_OBJ_STRING_NAME_EXISTS", text: "An attempt was made to add an object to the directory with a name that is already in use.")
    /// AD's refusal of a duplicate service principal name.
    public static let dsSPNNotUniqueInForest = WindowsStatus(code: 0x8007_21C7, symbol: "ERROR_DS_SPN_VALUE_NOT_UNIQUE_IN_FOREST", text: "The operation failed because SPN value provided for addition/modification is not unique forest-wide.")
    public static let connectionTimedOut = WindowsStatus(code: 0x8007_274C, symbol: "WSAETIMEDOUT", text: "A connection attempt failed because the connected party did not properly respond after a period of time, or established connection failed because connected host has failed to respond.")
    /// The destination refused the connection (rule N1: not on one of its migration networks).
    public static let connectionRefused = WindowsStatus(code: 0x8007_274D, symbol: "WSAECONNREFUSED", text: "No connection could be made because the target machine actively refused it.")
    public static let connectionReset = WindowsStatus(code: 0x8007_2746, symbol: "WSAECONNRESET", text: "An existing connection was forcibly closed by the remote host.")
    /// The migration peers speak incompatible protocol versions.
    public static let revisionMismatch = WindowsStatus(code: 0x8007_0519, symbol: "ERROR_REVISION_MISMATCH", text: "Indicates two revision levels are incompatible.")
    /// The migrated data did not match its checksum.
    public static let crcError = WindowsStatus(code: 0x8007_0017, symbol: "ERROR_CRC", text: "Data error (cyclic redundancy check).")
    /// Not enough free space for an incoming virtual machine (after the configured reserve).
    public static let diskFull = WindowsStatus(code: 0x8007_0070, symbol: "ERROR_DISK_FULL", text: "There is not enough space on the disk.")
    public static let alreadyExists = WindowsStatus(code: 0x8007_00B7, symbol: "ERROR_ALREADY_EXISTS", text: "Cannot create a file when that file already exists.")
    public static let unspecifiedFailure = WindowsStatus(code: 0x8000_4005, symbol: "E_FAIL", text: "Unspecified error")

    /// Every status this table knows, in code order.
    public static let all: [WindowsStatus] = [
        insufficientMemory, invalidHandle, unsupportedFunction, targetUnknown, internalError, packageNotFound,
        invalidToken, qopNotSupported, logonDenied, unknownCredentials, noCredentials, messageAltered,
        outOfSequence, noAuthenticatingAuthority, contextExpired, incompleteMessage, incompleteCredentials,
        bufferTooSmall, wrongPrincipal, timeSkew, untrustedRoot, illegalMessage, encryptFailure, decryptFailure,
        algorithmMismatch, securityQoSFailed, kdcInvalidRequest, kdcUnknownEtype, delegationRequired, badBindings,
        noKerbKey, downgradeDetected, noS4UProtSupport, crossRealmDelegationFailure, invalidParameter,
        delegationPolicy, policyNTLMOnly,
        accessDenied, notSupported, serviceDoesNotExist, invalidArgument, notFound, accountDisabled, noSuchDomain, trustFailure,
        dsNoSuchObject, dsInsufficientAccessRights, dsObjectExists, dsSPNNotUniqueInForest,
        connectionTimedOut, connectionRefused, connectionReset,
        revisionMismatch, crcError, diskFull, alreadyExists, unspecifiedFailure,
    ].sorted { $0.code < $1.code }

    private static let table: [UInt32: WindowsStatus] = Dictionary(all.map { ($0.code, $0) }, uniquingKeysWith: { a, _ in a })
}
