import CGSSAPI

/// Context flags requested by an initiator and granted by the mechanism (`GSS_C_*_FLAG`).
public struct GSSContextFlags: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Forward the initiator's TGT to the acceptor (`GSS_C_DELEG_FLAG`).
    public static let delegate = GSSContextFlags(rawValue: UInt32(GSS_C_DELEG_FLAG))
    /// The acceptor proves its identity too (`GSS_C_MUTUAL_FLAG`).
    public static let mutual = GSSContextFlags(rawValue: UInt32(GSS_C_MUTUAL_FLAG))
    /// Detect replayed messages (`GSS_C_REPLAY_FLAG`).
    public static let replay = GSSContextFlags(rawValue: UInt32(GSS_C_REPLAY_FLAG))
    /// Detect out-of-sequence messages (`GSS_C_SEQUENCE_FLAG`).
    public static let sequence = GSSContextFlags(rawValue: UInt32(GSS_C_SEQUENCE_FLAG))
    /// Confidentiality (encryption) is available (`GSS_C_CONF_FLAG`).
    public static let confidentiality = GSSContextFlags(rawValue: UInt32(GSS_C_CONF_FLAG))
    /// Integrity (signing) is available (`GSS_C_INTEG_FLAG`).
    public static let integrity = GSSContextFlags(rawValue: UInt32(GSS_C_INTEG_FLAG))
    /// Anonymous initiator (`GSS_C_ANON_FLAG`).
    public static let anonymous = GSSContextFlags(rawValue: UInt32(GSS_C_ANON_FLAG))
    /// Per-message protection is usable before completion (`GSS_C_PROT_READY_FLAG`).
    public static let protectionReady = GSSContextFlags(rawValue: UInt32(GSS_C_PROT_READY_FLAG))
    /// The context can be exported (`GSS_C_TRANS_FLAG`).
    public static let transferable = GSSContextFlags(rawValue: UInt32(GSS_C_TRANS_FLAG))
    /// Delegate only when KDC policy says the target is trusted (`GSS_C_DELEG_POLICY_FLAG`).
    public static let delegatePolicy = GSSContextFlags(rawValue: UInt32(GSS_C_DELEG_POLICY_FLAG))

    /// Mutual authentication, replay and sequence detection, integrity and confidentiality.
    public static let standard: GSSContextFlags = [.mutual, .replay, .sequence, .integrity, .confidentiality]

    public var description: String {
        let names: [(GSSContextFlags, String)] = [
            (.delegate, "deleg"), (.mutual, "mutual"), (.replay, "replay"), (.sequence, "sequence"),
            (.confidentiality, "conf"), (.integrity, "integ"), (.anonymous, "anon"),
            (.protectionReady, "prot_ready"), (.transferable, "trans"), (.delegatePolicy, "deleg_policy"),
        ]
        return "[" + names.filter { contains($0.0) }.map(\.1).joined(separator: ", ") + "]"
    }
}

/// Channel bindings (RFC 2744 §3.11), normally only application data such as a TLS
/// `tls-server-end-point` hash; both sides must pass the same value.
public struct GSSChannelBindings: Sendable, Hashable {
    public var applicationData: [UInt8]

    public init(applicationData: [UInt8]) { self.applicationData = applicationData }

    func withC<R>(_ body: (gss_channel_bindings_t) -> R) -> R {
        var data = applicationData
        return data.withUnsafeMutableBytes { raw in
            var cb = gss_channel_bindings_struct()
            cb.initiator_addrtype = OM_uint32(GSS_C_AF_UNSPEC)
            cb.acceptor_addrtype = OM_uint32(GSS_C_AF_UNSPEC)
            cb.application_data = gss_buffer_desc(length: raw.count, value: raw.baseAddress)
            return withUnsafeMutablePointer(to: &cb) { body($0) }
        }
    }
}

/// The result of one step of context establishment.
public struct GSSStep: Sendable, Hashable {
    /// The token to send to the peer, if any (send it even when ``isComplete``).
    public let token: [UInt8]?
    /// True when the context is established on this side.
    public let isComplete: Bool
}
