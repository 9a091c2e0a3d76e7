import WindowsStatus

/// A failed LDAP operation: libldap's result code and text, the server's diagnostic message,
/// and the Windows status an AD admin would see for it.
public struct LDAPError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The operation that failed (`bind`, `search CN=…`, `connect`).
    public var operation: String
    /// The LDAP result code (RFC 4511; negative values are libldap's local errors).
    public var code: Int32
    /// `ldap_err2string(code)`.
    public var text: String
    /// The server's (or SASL's) diagnostic message, if any.
    public var diagnostic: String?
    public var status: WindowsStatus
    /// What to do about it.
    public var fix: String?

    public init(operation: String, code: Int32, text: String, diagnostic: String? = nil, fix: String? = nil) {
        self.operation = operation
        self.code = code
        self.text = text
        self.diagnostic = diagnostic.flatMap { $0.isEmpty ? nil : $0 }
        self.status = LDAPError.status(code: code)
        self.fix = fix ?? LDAPError.fix(code: code, diagnostic: diagnostic ?? "")
    }

    /// Windows's status for an LDAP result code (as ADSI reports them).
    static func status(code: Int32) -> WindowsStatus {
        switch code {
        case 49: return .logonDenied                    // invalidCredentials
        case 8, 13: return .delegationPolicy            // strongerAuthRequired, confidentialityRequired
        case 32: return .dsNoSuchObject                 // noSuchObject
        case 50: return .dsInsufficientAccessRights     // insufficientAccessRights
        case 51, 52, 53: return .noAuthenticatingAuthority // busy, unavailable, unwillingToPerform
        case -1, 81: return .connectionRefused          // LDAP_SERVER_DOWN
        case -5, 85: return .connectionTimedOut         // LDAP_TIMEOUT
        case -2: return .noCredentials                  // LDAP_LOCAL_ERROR: SASL/GSSAPI found no ticket
        case -6, 86: return .noCredentials              // LDAP_AUTH_UNKNOWN
        case 12: return .notSupported                   // unavailableCriticalExtension (paged results)
        case 4: return .bufferTooSmall                  // sizeLimitExceeded
        case -7, 87: return .invalidArgument            // LDAP_FILTER_ERROR
        case 34: return .invalidArgument                // invalidDNSyntax
        default: return .unspecifiedFailure
        }
    }

    static func fix(code: Int32, diagnostic: String) -> String? {
        switch code {
        case -2, -6, 86, 49:
            if diagnostic.contains("No Kerberos credentials") || diagnostic.contains("No credentials") || diagnostic.contains("not found in Kerberos database") || code != 49 {
                return "Get a Kerberos ticket first (kinit user@REALM, or sign on to the domain); the bind uses SASL GSSAPI with it, the LDAP URI's host must be the DC's name its ldap/ SPN uses."
            }
            return "Check the account's ticket (klist) and that the DC accepts it."
        case -1, 81: return "Check the LDAP URI (ldap://dc.example.com) and that the DC is reachable on port 389."
        case 8, 13: return "The DC requires signing or sealing; SASL GSSAPI provides both — check that the bind used GSSAPI."
        case 32: return "Check the search base (--ldap-base); by default it is the DC's defaultNamingContext."
        case 50: return "The account may not read these objects; use an account with read access to the domain."
        default: return nil
        }
    }

    public var description: String {
        var s = "LDAP \(operation) failed: \(text) (LDAP \(code))"
        if let diagnostic { s += ": \(diagnostic)" }
        s += " [\(status.symbol) \(status.hex)]"
        if let fix { s += ". \(fix)" }
        return s
    }
}
