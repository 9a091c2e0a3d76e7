import CGSSAPI
import KerberosCrypto

// The only place MIT's lucid-context export is called: `GSS` reads an established context's keys
// and sequence numbers from MIT and hands `KerberosCrypto` plain key material (`LucidContext`).
extension LucidContext {
    /// Exports the context `handle`. MIT deletes the context on export: `handle` becomes
    /// `GSS_C_NO_CONTEXT` and must not be used again, even when this throws.
    package static func export(_ handle: inout gss_ctx_id_t?) throws -> LucidContext {
        var minor: OM_uint32 = 0
        var raw: UnsafeMutableRawPointer?
        let major = gss_krb5_export_lucid_sec_context(&minor, &handle, 1, &raw)
        guard major & 0xFFFF_0000 == 0, let raw else {
            throw KerberosCryptoError.invalidKey("gss_krb5_export_lucid_sec_context failed (major 0x\(String(major, radix: 16)), minor \(minor))")
        }
        defer { _ = gss_krb5_free_lucid_sec_context(&minor, raw) }
        return try parse(raw)
    }

    /// Reads the keys and sequence numbers of the live context `handle` **without** deleting it:
    /// `gss_inquire_sec_context_by_oid` with the lucid-export OID (version 1), which is what
    /// `gss_krb5_export_lucid_sec_context` calls before it deletes the context. The context stays
    /// usable for `gss_inquire_context`, `gss_wrap_size_limit` and the like; its own per-message
    /// sequence state is not updated by whoever continues with the returned keys.
    /// Works through SPNEGO (which forwards the inquiry to the Kerberos context).
    package static func inquire(_ handle: gss_ctx_id_t) throws -> LucidContext {
        var minor: OM_uint32 = 0
        var dataSet: gss_buffer_set_t? = nil
        let major = exportLucidOID.withUnsafeBytes { bytes in
            var oid = gss_OID_desc(length: OM_uint32(bytes.count), elements: UnsafeMutableRawPointer(mutating: bytes.baseAddress))
            return gss_inquire_sec_context_by_oid(&minor, handle, &oid, &dataSet)
        }
        defer { if dataSet != nil { _ = gss_release_buffer_set(&minor, &dataSet) } }
        guard major & 0xFFFF_0000 == 0, let set = dataSet?.pointee, set.count == 1,
              let element = set.elements?.pointee, element.length == MemoryLayout<UnsafeMutableRawPointer>.size,
              let value = element.value,
              let raw = value.loadUnaligned(as: UnsafeMutableRawPointer?.self) else {
            throw KerberosCryptoError.invalidKey("lucid context inquiry failed (major 0x\(String(major, radix: 16)), minor \(minor))")
        }
        defer { _ = gss_krb5_free_lucid_sec_context(&minor, raw) }
        return try parse(raw)
    }

    /// GSS_KRB5_EXPORT_LUCID_SEC_CONTEXT_OID (1.2.840.113554.1.2.2.5.6) with version 1 appended.
    static let exportLucidOID: [UInt8] = [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x12, 0x01, 0x02, 0x02, 0x05, 0x06, 0x01]

    private static func parse(_ raw: UnsafeMutableRawPointer) throws -> LucidContext {
        let lucid = raw.assumingMemoryBound(to: gss_krb5_lucid_context_v1_t.self).pointee
        guard lucid.version == 1, lucid.protocol == 1 else {
            throw KerberosCryptoError.invalidKey("not a CFX (RFC 4121) context: lucid version \(lucid.version), protocol \(lucid.protocol)")
        }
        let cfx = lucid.cfx_kd
        var result = LucidContext(
            role: lucid.initiate != 0 ? .initiator : .acceptor,
            contextKey: try key(cfx.ctx_key),
            acceptorSubkey: cfx.have_acceptor_subkey != 0 ? try key(cfx.acceptor_subkey) : nil,
            sendSequenceNumber: lucid.send_seq,
            receiveSequenceNumber: lucid.recv_seq)
        result.endTime = lucid.endtime
        return result
    }

    private static func key(_ lucid: gss_krb5_lucid_key_t) throws -> KerberosKey {
        guard let enctype = Enctype(rawValue: Int32(bitPattern: lucid.type)) else {
            throw KerberosCryptoError.invalidKey("enctype \(lucid.type) is not supported (need 17, 18, 19 or 20)")
        }
        guard let data = lucid.data else { throw KerberosCryptoError.invalidKey("lucid key without data") }
        return try KerberosKey(enctype: enctype, bytes: UnsafeRawBufferPointer(start: data, count: Int(lucid.length)))
    }
}
