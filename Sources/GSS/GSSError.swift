import CGSSAPI
import WindowsStatus

/// The GSSAPI routine that failed.
public enum GSSOperation: String, Sendable, Hashable {
    case importName = "gss_import_name"
    case displayName = "gss_display_name"
    case compareName = "gss_compare_name"
    case canonicalizeName = "gss_canonicalize_name"
    case exportName = "gss_export_name"
    case acquireCredential = "gss_acquire_cred_from"
    case acquireCredentialWithPassword = "gss_acquire_cred_with_password"
    case impersonate = "gss_acquire_cred_impersonate_name"
    case storeCredential = "gss_store_cred_into"
    case inquireCredential = "gss_inquire_cred"
    case initSecContext = "gss_init_sec_context"
    case acceptSecContext = "gss_accept_sec_context"
    case inquireContext = "gss_inquire_context"
    case wrap = "gss_wrap"
    case unwrap = "gss_unwrap"
    case wrapIOV = "gss_wrap_iov"
    case unwrapIOV = "gss_unwrap_iov"
    case getMIC = "gss_get_mic"
    case verifyMIC = "gss_verify_mic"
    case wrapSizeLimit = "gss_wrap_size_limit"
    case pseudoRandom = "gss_pseudo_random"
}

extension GSSOperation {
    /// Wrap, unwrap, MIC and size calls on an established context.
    var isPerMessage: Bool {
        switch self {
        case .wrap, .unwrap, .wrapIOV, .unwrapIOV, .getMIC, .verifyMIC, .wrapSizeLimit: true
        default: false
        }
    }
}

/// A failed GSSAPI call: the GSS major and minor status, the mechanism's own messages, the
/// operation, and the equivalent Windows status with a hint at the usual cause.
///
/// MIT reports most Kerberos failures as `GSS_S_FAILURE` with the real reason in the minor code (a
/// krb5 error code), so ``windowsStatus`` is derived from the minor code first, then the major.
public struct GSSError: Error, Sendable, Hashable, CustomStringConvertible {
    public let operation: GSSOperation
    public let major: GSSMajorStatus
    /// The mechanism's minor status; for Kerberos a krb5 error code (see ``krb5ErrorCode``).
    public let minor: UInt32
    /// `gss_display_status` texts for the major status.
    public let majorMessages: [String]
    /// `gss_display_status` texts for the minor status, for example `Server not found in Kerberos database`.
    public let minorMessages: [String]
    /// What Windows (SSPI) reports for the same failure.
    public let windowsStatus: WindowsStatus
    /// The usual causes and fixes, in plain words.
    public let explanation: String
    /// A token the failing context step produced for the peer (for example a KRB-ERROR from an
    /// acceptor, telling the initiator about clock skew); send it before closing, if any.
    public internal(set) var peerToken: [UInt8]? = nil

    /// The krb5 error code behind the minor status, as in `krb5.h` (e.g. -1765328377 for
    /// `KRB5KDC_ERR_S_PRINCIPAL_UNKNOWN`), or nil when the minor status is not a krb5 code.
    ///
    /// MIT's mechanism glue hands out substitute minor numbers (from 100000) when a code passes
    /// through a second mechanism such as SPNEGO; those are resolved from the message text.
    public var krb5ErrorCode: Int32? { GSSError.resolveKrb5Code(minor: minor, messages: minorMessages) }

    public init(operation: GSSOperation, major: GSSMajorStatus, minor: UInt32,
                majorMessages: [String], minorMessages: [String]) {
        self.operation = operation
        self.major = major
        self.minor = minor
        self.majorMessages = majorMessages
        self.minorMessages = minorMessages
        let code = GSSError.resolveKrb5Code(minor: minor, messages: minorMessages)
        var (status, hint) = GSSError.classify(operation: operation, major: major, minor: code.map { UInt32(bitPattern: $0) } ?? minor)
        if code == Int32(truncatingIfNeeded: KRB5KDC_ERR_S_PRINCIPAL_UNKNOWN), let path = GSSError.missingCrossRealmKey(minorMessages) {
            status = .noAuthenticatingAuthority
            hint = "No trust path: the KDC of \(path.from) has no cross-realm key for \(path.to) (krbtgt/\(path.to)@\(path.from)), "
                + "so no KDC of the service's realm can be reached through it — the domains do not trust each other, "
                + "or krb5.conf [capaths] names no path."
        }
        self.windowsStatus = status
        self.explanation = hint
    }

    /// Builds the error for a failed call, reading the texts from `gss_display_status`.
    init(_ operation: GSSOperation, major: OM_uint32, minor: OM_uint32, mechanism: GSSMechanism? = nil) {
        let majorMessages = GSSError.displayStatus(major, type: GSS_C_GSS_CODE, mechanism: nil)
        // MIT's mechanism glue remembers which mechanism produced a minor code: no OID needed.
        let minorMessages = minor == 0 ? [] :
            GSSError.displayStatus(minor, type: GSS_C_MECH_CODE, mechanism: mechanism)
        self.init(operation: operation, major: GSSMajorStatus(rawValue: major), minor: minor,
                  majorMessages: majorMessages, minorMessages: minorMessages)
    }

    /// An error detected before calling GSSAPI (bad argument, context not ready).
    init(_ operation: GSSOperation, _ major: GSSMajorStatus, _ message: String) {
        self.init(operation: operation, major: major, minor: 0, majorMessages: [message], minorMessages: [])
    }

    /// `gss_init_sec_context failed: Server not found in Kerberos database (GSS_S_FAILURE, minor
    /// 0x96C73A07) → SEC_E_TARGET_UNKNOWN 0x80090303. Hint: …`
    public var description: String {
        let texts = (majorMessages + minorMessages.filter { $0 != "Success" }).joined(separator: "; ")
        let minorHex = "0x" + String(minor, radix: 16, uppercase: true)
        return "\(operation.rawValue) failed: \(texts) (\(major), minor \(minorHex)) → "
            + "\(windowsStatus.symbol) \(windowsStatus.hex). Hint: \(explanation)"
    }

    static func displayStatus(_ code: OM_uint32, type: Int32, mechanism: GSSMechanism?) -> [String] {
        var messages: [String] = []
        var context: OM_uint32 = 0
        repeat {
            var minor: OM_uint32 = 0
            var buffer = gss_buffer_desc()
            let major: OM_uint32
            if let mechanism {
                major = mechanism.withOID { gss_display_status(&minor, code, type, $0, &context, &buffer) }
            } else {
                major = gss_display_status(&minor, code, type, nil, &context, &buffer)
            }
            guard major == 0 else { break }
            let text = buffer.string
            gss_release_buffer(&minor, &buffer)
            if !text.isEmpty { messages.append(text) }
        } while context != 0 && messages.count < 16
        return messages
    }
}

extension GSSError {
    private static func k(_ code: Int) -> UInt32 { UInt32(truncatingIfNeeded: code) }

    /// krb5 error codes lie in the `krb5` com_err table: 0x96C73A00…0x96C73AFF.
    static func isKrb5Code(_ minor: UInt32) -> Bool { minor & 0xFFFF_FF00 == 0x96C7_3A00 }

    /// English texts of MIT's krb5 error table, to resolve substitute minor numbers.
    static let krb5Texts: [(String, Int)] = [
        ("Client '", KRB5KDC_ERR_C_PRINCIPAL_UNKNOWN), ("Client not found in Kerberos database", KRB5KDC_ERR_C_PRINCIPAL_UNKNOWN),
        ("Server '", KRB5KDC_ERR_S_PRINCIPAL_UNKNOWN), ("Server not found in Kerberos database", KRB5KDC_ERR_S_PRINCIPAL_UNKNOWN),
        ("Server krbtgt/", KRB5KDC_ERR_S_PRINCIPAL_UNKNOWN),
        ("Preauthentication failed", KRB5KDC_ERR_PREAUTH_FAILED),
        ("Decrypt integrity check failed", KRB5KRB_AP_ERR_BAD_INTEGRITY),
        ("Cannot contact any KDC", KRB5_KDC_UNREACH),
        ("Cannot resolve network address for KDC", KRB5_REALM_CANT_RESOLVE),
        ("No credentials cache found", KRB5_FCC_NOFILE),
        ("Matching credential not found", KRB5_CC_NOTFOUND),
        ("KDC can't fulfill requested option", KRB5KDC_ERR_BADOPTION),
        ("KDC policy rejects request", KRB5KDC_ERR_POLICY),
        ("Clock skew too great", KRB5KRB_AP_ERR_SKEW),
        ("Ticket expired", KRB5KRB_AP_ERR_TKT_EXPIRED),
        ("Key table entry not found", KRB5_KT_NOTFOUND), ("No key table entry found", KRB5_KT_NOTFOUND),
        ("Message stream modified", KRB5KRB_AP_ERR_MODIFIED),
        ("Request is a replay", KRB5KRB_AP_ERR_REPEAT),
        ("Wrong principal in request", KRB5KRB_AP_WRONG_PRINC),
        ("Client's credentials have been revoked", KRB5KDC_ERR_CLIENT_REVOKED),
    ]

    /// `krbtgt/TO@FROM` (TO ≠ FROM) named in an unknown-server message: the realm FROM has no trust to TO.
    static func missingCrossRealmKey(_ messages: [String]) -> (from: String, to: String)? {
        for text in messages {
            guard let r = text.range(of: "krbtgt/[^@ ']+@[^ ']+", options: .regularExpression) else { continue }
            let parts = text[r].dropFirst("krbtgt/".count).split(separator: "@", maxSplits: 1)
            if parts.count == 2, parts[0] != parts[1] { return (String(parts[1]), String(parts[0])) }
        }
        return nil
    }

    static func resolveKrb5Code(minor: UInt32, messages: [String]) -> Int32? {
        if isKrb5Code(minor) { return Int32(bitPattern: minor) }
        guard minor >= 100_000 else { return nil }
        for text in messages {
            if let hit = krb5Texts.first(where: { text.hasPrefix($0.0) || text.contains($0.0) && $0.0.count > 12 }) {
                return Int32(truncatingIfNeeded: hit.1)
            }
        }
        return nil
    }

    /// Minor (krb5) codes first: MIT wraps most Kerberos failures in `GSS_S_FAILURE`.
    static func classify(operation: GSSOperation, major: GSSMajorStatus,
                         minor: UInt32) -> (WindowsStatus, String) {
        // Per-message calls: the major status says it all (the minor is a crypto detail, e.g.
        // BAD_INTEGRITY for an altered message, which must not read as a failed logon).
        if operation.isPerMessage { return classifyMajor(major) }
        if operation == .acceptSecContext && minor == k(KRB5KRB_AP_ERR_BAD_INTEGRITY) {
            return (.wrongPrincipal, "The service could not decrypt the ticket with its key: the keytab is out "
                    + "of date (the password or key changed) or the ticket was issued for another account.")
        }
        switch minor {
        case k(KRB5_FCC_NOFILE), k(KRB5_CC_NOTFOUND), k(KRB5_CC_NOSUPP), k(KRB5_CC_BADNAME),
             k(KRB5_CC_FORMAT), k(KRB5_CC_END):
            return (.noCredentials, "No usable Kerberos tickets: the credential cache is missing, empty or has no "
                    + "ticket for this principal. Sign on (kinit) or point the credential store at the right ccache.")
        case k(KRB5_KT_NOTFOUND), k(KRB5_KT_END), k(KRB5_KT_NOWRITE), k(KRB5_KT_BADNAME):
            if operation == .acceptSecContext {
                return (.wrongPrincipal, "The ticket is for a service principal (or key version) this keytab does not "
                        + "hold: the client asked for a different SPN, or the keytab is stale. Compare the SPN the "
                        + "client used with `klist -k`.")
            }
            return (.noCredentials, "The keytab has no key for this principal (or does not exist). Export the key "
                    + "with kadmin `ktadd` and check the keytab path in the credential store.")
        case k(KRB5KDC_ERR_BADOPTION):
            return (.noCredentials, "The KDC refused the requested option. During delegation (S4U2Proxy) this means "
                    + "the service account is not allowed to delegate to the target service (not in its "
                    + "msDS-AllowedToDelegateTo / krbAllowedToDelegateTo list) or the evidence ticket was not "
                    + "forwardable; Hyper-V reports it as 0x8009030E.")
        case k(KRB5KDC_ERR_POLICY):
            return (.noCredentials, "The KDC policy refused the ticket (for S4U: protocol transition or delegation "
                    + "not permitted for this account, or the user cannot be delegated).")
        case k(KRB5KDC_ERR_S_PRINCIPAL_UNKNOWN):
            return (.targetUnknown, "The KDC does not know the target service principal. Check the SPN "
                    + "(service/host spelling, realm) and that it is registered on the right account.")
        case k(KRB5KDC_ERR_PREAUTH_FAILED), k(KRB5KDC_ERR_C_PRINCIPAL_UNKNOWN), k(KRB5KRB_AP_ERR_BAD_INTEGRITY),
             k(KRB5_PREAUTH_FAILED), k(KRB5KDC_ERR_CLIENT_REVOKED), k(KRB5KDC_ERR_KEY_EXP):
            return (.logonDenied, "The KDC rejected the logon: wrong password or key, unknown user, or a "
                    + "disabled/expired account.")
        case k(KRB5KRB_AP_ERR_SKEW), k(KRB5_KDCREP_SKEW):
            return (.timeSkew, "Clocks differ by more than the allowed skew (5 minutes by default). Synchronise "
                    + "the hosts' clocks with the domain.")
        case k(KRB5_KDC_UNREACH), k(KRB5_REALM_CANT_RESOLVE), k(KRB5_REALM_UNKNOWN):
            return (.noAuthenticatingAuthority, "No KDC could be reached for the realm: check the realm's `kdc` "
                    + "entries in krb5.conf (or DNS SRV records), that the KDC runs, and the network path.")
        case k(KRB5KRB_AP_ERR_TKT_EXPIRED), k(KRB5KRB_AP_ERR_TKT_NYV):
            return (.contextExpired, "The Kerberos ticket has expired (or is not yet valid). Get a new ticket "
                    + "(kinit, or purge the cache) and check the clocks.")
        case k(KRB5KRB_AP_ERR_MODIFIED), k(KRB5KRB_AP_WRONG_PRINC), k(KRB5KRB_AP_ERR_BADKEYVER),
             k(KRB5KRB_AP_ERR_NOKEY), k(KRB5KRB_AP_ERR_NOT_US):
            return (.wrongPrincipal, "The service could not decrypt the ticket: the ticket was issued for another "
                    + "principal, or the service's keytab is out of date (key version). Re-export the keytab or "
                    + "fix the duplicate SPN.")
        case k(KRB5KRB_AP_ERR_REPEAT):
            return (.outOfSequence, "The authenticator was replayed (seen before by the replay cache).")
        case k(KRB5KDC_ERR_ETYPE_NOSUPP):
            return (.kdcUnknownEtype, "No common encryption type between the client, KDC and the service keys.")
        default:
            break
        }
        return classifyMajor(major)
    }

    static func classifyMajor(_ major: GSSMajorStatus) -> (WindowsStatus, String) {
        if major.callingError != 0 {
            return (.invalidParameter, "The call was given an invalid argument (a programming error).")
        }
        switch major.routineError {
        case GSSMajorStatus.noCredentials.routineError:
            return (.noCredentials, "No credentials are available: no ticket cache / keytab for the requested "
                    + "name, or the user never signed on at this host.")
        case GSSMajorStatus.defectiveToken.routineError:
            return (.invalidToken, "The peer's token is malformed, truncated, or from another protocol or mechanism.")
        case GSSMajorStatus.badSignature.routineError:
            return (.messageAltered, "The message or its checksum was altered in transit (or protected with a "
                    + "different context key).")
        case GSSMajorStatus.contextExpired.routineError, GSSMajorStatus.credentialsExpired.routineError:
            return (.contextExpired, "The security context or its credentials have expired; re-authenticate.")
        case GSSMajorStatus.badBindings.routineError:
            return (.badBindings, "The channel bindings differ between initiator and acceptor (for example a "
                    + "different TLS channel).")
        case GSSMajorStatus.noContext.routineError:
            return (.invalidHandle, "The security context is not established (or was already released).")
        case GSSMajorStatus.badMech.routineError:
            return (.packageNotFound, "The requested mechanism is not available.")
        case GSSMajorStatus.badName.routineError, GSSMajorStatus.badNameType.routineError:
            return (.targetUnknown, "The name could not be parsed or is of an unsupported type.")
        case GSSMajorStatus.badQOP.routineError:
            return (.qopNotSupported, "The requested quality of protection is not supported.")
        case GSSMajorStatus.defectiveCredential.routineError:
            return (.unknownCredentials, "The credential is defective or of the wrong kind for this use.")
        case GSSMajorStatus.unavailable.routineError:
            return (.unsupportedFunction, "The mechanism does not support this operation.")
        case 0 where major.supplementary & (GSSMajorStatus.duplicateToken | GSSMajorStatus.oldToken
                                            | GSSMajorStatus.unseqToken | GSSMajorStatus.gapToken) != 0:
            return (.outOfSequence, "The message was replayed, reordered, or a message is missing.")
        default:
            return (.internalError, "The mechanism failed; see the minor status text for details.")
        }
    }
}

extension gss_buffer_desc {
    /// The buffer's bytes as UTF-8 text.
    var string: String {
        guard let value, length > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: value, count: length), as: UTF8.self)
    }

    /// A copy of the buffer's bytes.
    var bytes: [UInt8] {
        guard let value, length > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: value, count: length))
    }
}

// MARK: NTLM (gss-ntlmssp)

extension GSSError {
    /// The same failure with another Windows status and explanation.
    init(refining error: GSSError, windowsStatus: WindowsStatus, explanation: String) {
        operation = error.operation
        major = error.major
        minor = error.minor
        majorMessages = error.majorMessages
        minorMessages = error.minorMessages
        self.windowsStatus = windowsStatus
        self.explanation = explanation
        peerToken = error.peerToken
    }

    /// An acceptor's failure on an NTLM AUTHENTICATE message (type 3, bare or inside SPNEGO) is a refused logon —
    /// wrong password or unknown user — which Windows reports as SEC_E_LOGON_DENIED. gss-ntlmssp reports it as
    /// GSS_S_FAILURE with an errno-like minor code ("Invalid argument"), which would otherwise read as an internal
    /// error.
    func mappingNTLMLogonFailure(input token: [UInt8]) -> GSSError {
        guard operation == .acceptSecContext, major.routineError == GSSMajorStatus.failure.routineError,
              !GSSError.isKrb5Code(minor), GSSError.isNTLMAuthenticateMessage(token)
        else { return self }
        return GSSError(refining: self, windowsStatus: .logonDenied,
                        explanation: "The NTLM AUTHENTICATE message was refused: wrong password or unknown user "
                            + "(gss-ntlmssp checks it against the accounts in NTLM_USER_FILE or winbind).")
    }

    /// NTLMSSP message type 3, bare or inside SPNEGO: the signature "NTLMSSP\0" followed by type 3 (LE).
    static func isNTLMAuthenticateMessage(_ token: [UInt8]) -> Bool {
        let signature: [UInt8] = Array("NTLMSSP".utf8) + [0, 3, 0, 0, 0]
        guard token.count >= signature.count else { return false }
        return (0...(token.count - signature.count)).contains { token[$0..<($0 + signature.count)].elementsEqual(signature) }
    }
}

// MARK: SPNEGO hiding Kerberos's reason

extension GSSError {
    /// True for the error SPNEGO returns after its last mechanism (gss-ntlmssp) refused a name it cannot use
    /// (GSS_S_BAD_NAME / BAD_NAMETYPE with a minor code that is not Kerberos's): the mechanism tried before it
    /// (Kerberos) may have failed for the real reason, which SPNEGO drops.
    var isFallbackNameRefusal: Bool {
        (major.routineError == GSSMajorStatus.badName.routineError
            || major.routineError == GSSMajorStatus.badNameType.routineError)
            && GSSError.resolveKrb5Code(minor: minor, messages: minorMessages) == nil
    }

    /// A failed SPNEGO credential acquisition where Kerberos's own failure wins over gss-ntlmssp's later "bad
    /// name": when the KDC is unreachable (or refuses the logon) Kerberos fails first, SPNEGO moves on to NTLM,
    /// and NTLM's "invalid name" would read as SEC_E_TARGET_UNKNOWN instead of, say,
    /// SEC_E_NO_AUTHENTICATING_AUTHORITY (0x80090311). `kerberosOnly` repeats the call for Kerberos alone (only
    /// on this failure path); its krb5 error, if any, replaces this one.
    func preferringKerberosReason(mechanisms: [GSSMechanism],
                                  kerberosOnly: () -> GSSError?) -> GSSError {
        guard mechanisms.contains(.spnego), isFallbackNameRefusal,
              let kerberos = kerberosOnly(), kerberos.krb5ErrorCode != nil
        else { return self }
        return kerberos
    }
}
