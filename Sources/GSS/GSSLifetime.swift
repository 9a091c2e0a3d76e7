import CGSSAPI

/// Lifetimes cross the C boundary as whole seconds (`OM_uint32`, `GSS_C_INDEFINITE` for "no
/// limit"); the Swift API speaks `Duration?` (nil: indefinite, or the mechanism's default).
package enum GSSLifetime {
    /// Seconds to request: nil → `GSS_C_INDEFINITE`; otherwise whole seconds rounded up, at
    /// least 1 (MIT reads 0 as "the default", which a caller asking for a short lifetime does not
    /// mean) and at most the largest finite value. Never traps.
    package static func request(_ lifetime: Duration?) -> UInt32 {
        guard let lifetime else { return GSS_C_INDEFINITE }
        let (seconds, attoseconds) = lifetime.components
        let roundedUp = attoseconds > 0 && seconds < Int64.max ? seconds + 1 : seconds
        return UInt32(clamping: min(max(roundedUp, 1), Int64(GSS_C_INDEFINITE) - 1))
    }

    /// The initiator's `time_req`: nil → 0, which asks the mechanism for its default.
    package static func contextRequest(_ lifetime: Duration?) -> UInt32 {
        lifetime.map(request) ?? 0
    }

    /// A lifetime MIT reported: `GSS_C_INDEFINITE` → nil.
    package static func reported(_ seconds: UInt32) -> Duration? {
        seconds == GSS_C_INDEFINITE ? nil : .seconds(Int64(seconds))
    }
}

/// What `gss_inquire_context` reports about an established (or partly established) context.
public struct GSSContextInfo: Sendable {
    /// The initiator's name (whichever side asks).
    public let initiator: GSSName
    /// The acceptor's name; nil when the initiator did not learn it (anonymous acceptor).
    public let acceptor: GSSName?
    /// Remaining lifetime; nil when indefinite.
    public let lifetime: Duration?
    /// The flags in force.
    public let flags: GSSContextFlags
    /// True on the side that initiated the context.
    public let isLocallyInitiated: Bool
    /// True once the context is fully established.
    public let isOpen: Bool
}

/// What `gss_inquire_cred` reports about a credential.
public struct GSSCredentialInfo: Sendable {
    /// The principal the credential belongs to.
    public let name: GSSName
    /// Remaining lifetime: zero when expired, nil when indefinite (keytab keys).
    public let lifetime: Duration?
    /// What the credential may be used for.
    public let usage: GSSCredentialUsage
}

/// A name as `gss_display_name` shows it.
public struct GSSDisplayedName: Sendable, Hashable {
    /// The text, e.g. `host@hosta.test` or `user@REALM`.
    public let text: String
    /// The DER contents of the name type's OID (empty when MIT reports none).
    public let type: [UInt8]
}
