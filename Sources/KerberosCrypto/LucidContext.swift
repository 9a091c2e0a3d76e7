import CGSSAPI

/// The keys and sequence numbers of an established MIT krb5 GSS context, taken with
/// `gss_krb5_export_lucid_sec_context` (version 1, CFX protocol), to continue its per-message
/// protection in a ``ProtectionContext``.
public struct LucidContext: Sendable {
    public let role: ProtectionContext.Role
    /// Initiator subkey or session key (`cfx_kd.ctx_key`).
    public let contextKey: KerberosKey
    /// `cfx_kd.acceptor_subkey` when `have_acceptor_subkey`.
    public let acceptorSubkey: KerberosKey?
    /// Next sequence number this side sends (`send_seq`).
    public let sendSequenceNumber: UInt64
    /// First sequence number expected from the peer (`recv_seq`).
    public let receiveSequenceNumber: UInt64

    public init(role: ProtectionContext.Role, contextKey: KerberosKey, acceptorSubkey: KerberosKey?,
                sendSequenceNumber: UInt64, receiveSequenceNumber: UInt64) {
        self.role = role
        self.contextKey = contextKey
        self.acceptorSubkey = acceptorSubkey
        self.sendSequenceNumber = sendSequenceNumber
        self.receiveSequenceNumber = receiveSequenceNumber
    }

    /// Exports the context `handle`. MIT deletes the context on export: `handle` becomes
    /// `GSS_C_NO_CONTEXT` and must not be used again, even when this throws.
    public static func export(_ handle: inout gss_ctx_id_t?) throws -> LucidContext {
        var minor: OM_uint32 = 0
        var raw: UnsafeMutableRawPointer?
        let major = gss_krb5_export_lucid_sec_context(&minor, &handle, 1, &raw)
        guard major & 0xFFFF_0000 == 0, let raw else {
            throw KerberosCryptoError.invalidKey("gss_krb5_export_lucid_sec_context failed (major 0x\(String(major, radix: 16)), minor \(minor))")
        }
        defer { _ = gss_krb5_free_lucid_sec_context(&minor, raw) }
        let lucid = raw.assumingMemoryBound(to: gss_krb5_lucid_context_v1_t.self).pointee
        guard lucid.version == 1, lucid.protocol == 1 else {
            throw KerberosCryptoError.invalidKey("not a CFX (RFC 4121) context: lucid version \(lucid.version), protocol \(lucid.protocol)")
        }
        let cfx = lucid.cfx_kd
        return LucidContext(
            role: lucid.initiate != 0 ? .initiator : .acceptor,
            contextKey: try key(cfx.ctx_key),
            acceptorSubkey: cfx.have_acceptor_subkey != 0 ? try key(cfx.acceptor_subkey) : nil,
            sendSequenceNumber: lucid.send_seq,
            receiveSequenceNumber: lucid.recv_seq)
    }

    private static func key(_ lucid: gss_krb5_lucid_key_t) throws -> KerberosKey {
        guard let enctype = Enctype(rawValue: Int32(bitPattern: lucid.type)) else {
            throw KerberosCryptoError.invalidKey("enctype \(lucid.type) is not supported (need 17, 18, 19 or 20)")
        }
        guard let data = lucid.data else { throw KerberosCryptoError.invalidKey("lucid key without data") }
        return try KerberosKey(enctype: enctype, bytes: UnsafeRawBufferPointer(start: data, count: Int(lucid.length)))
    }
}

extension ProtectionContext {
    /// Continues an exported MIT context. MIT's defaults: replay and sequence detection as the
    /// context's flags had them.
    public convenience init(lucid: LucidContext, replayDetection: Bool = true, sequenceDetection: Bool = true,
                            rejectOutOfSequence: Bool = false) throws {
        try self.init(role: lucid.role, contextKey: lucid.contextKey, acceptorSubkey: lucid.acceptorSubkey,
                      sendSequenceNumber: lucid.sendSequenceNumber, receiveSequenceNumber: lucid.receiveSequenceNumber,
                      replayDetection: replayDetection, sequenceDetection: sequenceDetection,
                      rejectOutOfSequence: rejectOutOfSequence)
    }
}
