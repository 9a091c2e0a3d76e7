/// The keys and sequence numbers of an established krb5 GSS context (RFC 4121, CFX), plain
/// key material to continue its per-message protection in a ``ProtectionContext``. `GSS` reads
/// them from MIT (`gss_krb5_export_lucid_sec_context` / the lucid-export OID); this module never
/// calls MIT.
package struct LucidContext: Sendable {
    package let role: ProtectionContext.Role
    /// Initiator subkey or session key (`cfx_kd.ctx_key`).
    package let contextKey: KerberosKey
    /// `cfx_kd.acceptor_subkey` when `have_acceptor_subkey`.
    package let acceptorSubkey: KerberosKey?
    /// Next sequence number this side sends (`send_seq`).
    package let sendSequenceNumber: UInt64
    /// First sequence number expected from the peer (`recv_seq`).
    package let receiveSequenceNumber: UInt64
    /// When the context expires (`endtime`, seconds since 1970; the ticket's end time).
    package var endTime: UInt32 = 0

    package init(role: ProtectionContext.Role, contextKey: KerberosKey, acceptorSubkey: KerberosKey?,
                sendSequenceNumber: UInt64, receiveSequenceNumber: UInt64) {
        self.role = role
        self.contextKey = contextKey
        self.acceptorSubkey = acceptorSubkey
        self.sendSequenceNumber = sendSequenceNumber
        self.receiveSequenceNumber = receiveSequenceNumber
    }

    /// The enctype of the key per-message tokens of this context are made with (the acceptor
    /// subkey when there is one).
    package var enctype: Enctype { (acceptorSubkey ?? contextKey).enctype }
}

extension ProtectionContext {
    /// Continues an exported MIT context. MIT's defaults: replay and sequence detection as the
    /// context's flags had them.
    package convenience init(lucid: LucidContext, replayDetection: Bool = true, sequenceDetection: Bool = true,
                            rejectOutOfSequence: Bool = false) throws {
        try self.init(role: lucid.role, contextKey: lucid.contextKey, acceptorSubkey: lucid.acceptorSubkey,
                      sendSequenceNumber: lucid.sendSequenceNumber, receiveSequenceNumber: lucid.receiveSequenceNumber,
                      replayDetection: replayDetection, sequenceDetection: sequenceDetection,
                      rejectOutOfSequence: rejectOutOfSequence)
    }
}
