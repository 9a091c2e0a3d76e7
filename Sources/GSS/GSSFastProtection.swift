import CGSSAPI
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import KerberosCrypto

/// Which code protects a context's messages (see docs/fast-protection.md).
public enum GSSProtectionPath: Sendable, Hashable {
    /// No per-message call yet; the first one decides.
    case undecided
    /// MIT's `gss_wrap`/`gss_unwrap`/`gss_get_mic`/`gss_verify_mic`.
    case mit
    /// `KerberosCrypto` (OpenSSL) with the context's keys, for an RFC 4121 context of enctype
    /// 17, 18, 19 or 20: the same tokens, sequence numbers and statuses as MIT.
    case kerberosCrypto(enctype: Int32)
}

/// The per-context choice between MIT and `KerberosCrypto`, made once, on the first per-message
/// call of an established context, and kept for the context's life (the two keep separate
/// sequence state, so a context never switches back).
///
/// The keys are read with `gss_inquire_sec_context_by_oid` (lucid export OID), which, unlike
/// `gss_krb5_export_lucid_sec_context`, leaves MIT's context alive: `inquire`, `lifetime` and
/// `wrapSizeLimit` keep working. The keys live only in the `ProtectionContext` this value owns and
/// are wiped (`OPENSSL_cleanse`) when the context value goes away; they are never logged.
struct GSSFastProtection {
    enum State {
        case undecided
        case mit
        case fast(ProtectionContext, enctype: Int32)
    }

    var state: State = .undecided
    /// False: use MIT for this context (set before the first per-message call).
    var allowed = GSSFastProtection.enabledByEnvironment

    /// `MIGAUTH_GSS_FAST_PROTECTION=0` (or `off`, `false`, `no`) turns the fast path off in the
    /// whole process, for debugging against MIT's own code.
    static let environmentVariable = "MIGAUTH_GSS_FAST_PROTECTION"

    static var enabledByEnvironment: Bool {
        enabled(byEnvironmentValue: getenv(environmentVariable).map { String(cString: $0) })  // no dictionary per context
    }

    /// Whether a value of ``environmentVariable`` (nil: unset) leaves the fast path on.
    static func enabled(byEnvironmentValue value: String?) -> Bool {
        guard let value else { return true }
        return !["0", "off", "false", "no"].contains(value.lowercased())
    }

    var path: GSSProtectionPath {
        switch state {
        case .undecided: .undecided
        case .mit: .mit
        case .fast(_, let enctype): .kerberosCrypto(enctype: enctype)
        }
    }

    /// The fast context to use for a call with `qop`, deciding on the first call; nil → MIT.
    /// A non-default QOP goes to MIT without deciding: MIT refuses it (`GSS_S_BAD_QOP`) before it
    /// touches any sequence state.
    mutating func context(qop: UInt32, handle: gss_ctx_id_t?, isComplete: Bool,
                          flags: GSSContextFlags) -> ProtectionContext? {
        guard qop == 0 else { return nil }
        switch state {
        case .fast(let context, _): return context
        case .mit: return nil
        case .undecided: break
        }
        // A call before the context is complete (PROT_READY) goes to MIT, and so must all later ones.
        guard allowed, isComplete, let handle,
              let lucid = try? LucidContext.inquire(handle),
              let context = try? ProtectionContext(lucid: lucid, replayDetection: flags.contains(.replay),
                                                   sequenceDetection: flags.contains(.sequence),
                                                   rejectOutOfSequence: true) else {
            state = .mit
            return nil
        }
        // No end-time check per message: MIT 1.20 makes and accepts tokens after the ticket
        // expired (checked in FastProtectionTests.expiredTicket), so the fast path does too.
        state = .fast(context, enctype: lucid.enctype.rawValue)
        return context
    }
}

extension GSSError {
    /// A `KerberosCrypto` failure as the `GSSError` MIT's call would have produced: the same
    /// major status (BAD_SIG, DEFECTIVE_TOKEN, DUPLICATE/OLD/UNSEQ/GAP_TOKEN, FAILURE), hence the
    /// same Windows status; minor 0 and the detail in `minorMessages`.
    init(_ operation: GSSOperation, fastPathError error: any Error) {
        let major = (error as? KerberosCryptoError)?.gssMajorStatus ?? GSSMajorStatus.failure.rawValue
        self.init(operation: operation, major: GSSMajorStatus(rawValue: major), minor: 0,
                  majorMessages: GSSError.displayStatus(major, type: GSS_C_GSS_CODE, mechanism: nil),
                  minorMessages: ["KerberosCrypto: \(error)"])
    }
}

/// Runs a `KerberosCrypto` call, mapping its error to ``GSSError``.
func fastCall<R>(_ operation: GSSOperation, _ body: () throws -> R) throws(GSSError) -> R {
    do { return try body() } catch { throw GSSError(operation, fastPathError: error) }
}
