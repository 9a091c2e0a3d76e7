import CGSSAPI
import GSS
import KerberosCrypto

/// A raw MIT krb5 GSS security context established in this process, for interop tests and the
/// benchmark: both ends in one process, MIT's own gss_wrap/gss_unwrap/gss_get_mic/gss_verify_mic.
/// Not for production use (the `GSS` module is the safe API). One owner, one thread at a time.
package final class MITGSSContext: @unchecked Sendable {
    /// The context handle; `GSS_C_NO_CONTEXT` after ``exportLucid()``.
    package private(set) var handle: gss_ctx_id_t?
    package let isInitiator: Bool

    init(handle: gss_ctx_id_t?, isInitiator: Bool) {
        self.handle = handle
        self.isInitiator = isInitiator
    }

    deinit {
        var minor: OM_uint32 = 0
        if handle != nil { _ = gss_delete_sec_context(&minor, &handle, nil) }
    }

    /// Context flags requested by ``establish(initiatorCCache:acceptorKeytab:target:mutual:enctypes:)``.
    package static let replayFlag: OM_uint32 = 4, sequenceFlag: OM_uint32 = 8

    /// Establishes an initiator (credentials from `initiatorCCache`) and an acceptor (keys from
    /// `acceptorKeytab`) for the host-based service `target` ("service@host"). With `enctypes`,
    /// the initiator only allows those for the session key and subkeys.
    package static func establish(initiatorCCache: String, acceptorKeytab: String, target: String,
                                 mutual: Bool = true, enctypes: [Int32]? = nil) throws -> (initiator: MITGSSContext, acceptor: MITGSSContext) {
        var minor: OM_uint32 = 0
        var targetName: gss_name_t? = nil
        var nameBytes = Array(target.utf8)
        let importMajor = nameBytes.withUnsafeMutableBytes { b in
            var buffer = gss_buffer_desc(length: b.count, value: b.baseAddress)
            return gss_import_name(&minor, &buffer, mig_nt_hostbased_service(), &targetName)
        }
        try check(importMajor, minor, "gss_import_name")
        defer { _ = gss_release_name(&minor, &targetName) }

        var initiatorCred = try acquire(store: "ccache", value: initiatorCCache, usage: 1)
        defer { _ = gss_release_cred(&minor, &initiatorCred) }
        var acceptorCred = try acquire(store: "keytab", value: acceptorKeytab, usage: 2)
        defer { _ = gss_release_cred(&minor, &acceptorCred) }
        if let enctypes {
            var list = enctypes
            try check(gss_krb5_set_allowable_enctypes(&minor, initiatorCred, OM_uint32(list.count), &list),
                      minor, "gss_krb5_set_allowable_enctypes")
        }

        let flags: OM_uint32 = (mutual ? 2 : 0) | replayFlag | sequenceFlag | 16 | 32
        var initiator: gss_ctx_id_t? = nil
        var acceptor: gss_ctx_id_t? = nil
        var reply: [UInt8] = []
        var initiatorDone = false, acceptorDone = false
        for _ in 0..<4 where !(initiatorDone && acceptorDone) {
            var output = gss_buffer_desc(length: 0, value: nil)
            let major = reply.withUnsafeMutableBytes { r in
                var input = gss_buffer_desc(length: r.count, value: r.baseAddress)
                return withUnsafeMutablePointer(to: &input) { inputPointer in
                    gss_init_sec_context(&minor, initiatorCred, &initiator, targetName, mig_mech_krb5(), flags, 0,
                                         nil, r.count > 0 ? inputPointer : nil, nil, &output, nil, nil)
                }
            }
            try check(major, minor, "gss_init_sec_context")
            initiatorDone = major == 0
            let token = take(&output)
            reply = []
            if !token.isEmpty {
                var acceptOutput = gss_buffer_desc(length: 0, value: nil)
                var tokenBytes = token
                let acceptMajor = tokenBytes.withUnsafeMutableBytes { t in
                    var input = gss_buffer_desc(length: t.count, value: t.baseAddress)
                    return gss_accept_sec_context(&minor, &acceptor, acceptorCred, &input, nil, nil, nil,
                                                  &acceptOutput, nil, nil, nil)
                }
                try check(acceptMajor, minor, "gss_accept_sec_context")
                acceptorDone = acceptMajor == 0
                reply = take(&acceptOutput)
            }
        }
        guard initiatorDone, acceptorDone else {
            throw KerberosCryptoError.libcrypto("GSS context establishment did not complete")
        }
        return (MITGSSContext(handle: initiator, isInitiator: true), MITGSSContext(handle: acceptor, isInitiator: false))
    }

    /// gss_wrap.
    package func wrap(_ message: [UInt8], confidential: Bool = true) throws -> [UInt8] {
        var minor: OM_uint32 = 0
        var output = gss_buffer_desc(length: 0, value: nil)
        var state: Int32 = 0
        var bytes = message
        let major = bytes.withUnsafeMutableBytes { m in
            var input = gss_buffer_desc(length: m.count, value: m.baseAddress)
            return gss_wrap(&minor, handle, confidential ? 1 : 0, 0, &input, &state, &output)
        }
        try Self.check(major, minor, "gss_wrap")
        return Self.take(&output)
    }

    /// gss_unwrap: the message, whether it was sealed, and the major status (supplementary bits).
    package func unwrap(_ token: [UInt8]) throws -> (message: [UInt8], confidential: Bool, major: OM_uint32) {
        var minor: OM_uint32 = 0
        var output = gss_buffer_desc(length: 0, value: nil)
        var state: Int32 = 0
        var bytes = token
        let major = bytes.withUnsafeMutableBytes { t in
            var input = gss_buffer_desc(length: t.count, value: t.baseAddress)
            return gss_unwrap(&minor, handle, &input, &output, &state, nil)
        }
        try Self.check(major, minor, "gss_unwrap")
        return (Self.take(&output), state != 0, major)
    }

    /// Wraps `message` and unwraps it on `peer` without keeping the results (benchmark loop body).
    package func wrapUnwrap(_ message: UnsafeMutableRawBufferPointer, peer: MITGSSContext) throws {
        var minor: OM_uint32 = 0
        var token = gss_buffer_desc(length: 0, value: nil)
        var input = gss_buffer_desc(length: message.count, value: message.baseAddress)
        try Self.check(gss_wrap(&minor, handle, 1, 0, &input, nil, &token), minor, "gss_wrap")
        var output = gss_buffer_desc(length: 0, value: nil)
        let major = gss_unwrap(&minor, peer.handle, &token, &output, nil, nil)
        _ = gss_release_buffer(&minor, &token)
        _ = gss_release_buffer(&minor, &output)
        try Self.check(major, minor, "gss_unwrap")
    }

    /// gss_get_mic.
    package func getMIC(_ message: [UInt8]) throws -> [UInt8] {
        var minor: OM_uint32 = 0
        var output = gss_buffer_desc(length: 0, value: nil)
        var bytes = message
        let major = bytes.withUnsafeMutableBytes { m in
            var input = gss_buffer_desc(length: m.count, value: m.baseAddress)
            return gss_get_mic(&minor, handle, 0, &input, &output)
        }
        try Self.check(major, minor, "gss_get_mic")
        return Self.take(&output)
    }

    /// gss_verify_mic: the major status (supplementary bits), or throws on a routine error.
    @discardableResult
    package func verifyMIC(_ message: [UInt8], token: [UInt8]) throws -> OM_uint32 {
        var minor: OM_uint32 = 0
        var m = message, t = token
        let major = m.withUnsafeMutableBytes { mb in
            t.withUnsafeMutableBytes { tb in
                var mbuf = gss_buffer_desc(length: mb.count, value: mb.baseAddress)
                var tbuf = gss_buffer_desc(length: tb.count, value: tb.baseAddress)
                return gss_verify_mic(&minor, handle, &mbuf, &tbuf, nil)
            }
        }
        try Self.check(major, minor, "gss_verify_mic")
        return major
    }

    /// Exports this context's keys; MIT deletes the context, so this object is unusable afterwards.
    package func exportLucid() throws -> LucidContext {
        try LucidContext.export(&handle)
    }

    // MARK: - Helpers

    private static func acquire(store key: String, value: String, usage: Int32) throws -> gss_cred_id_t? {
        var minor: OM_uint32 = 0
        var cred: gss_cred_id_t? = nil
        let major = key.withCString { k in
            value.withCString { v in
                var element = gss_key_value_element_desc(key: k, value: v)
                return withUnsafePointer(to: &element) { e in
                    var set = gss_key_value_set_desc(count: 1, elements: UnsafeMutablePointer(mutating: e))
                    return gss_acquire_cred_from(&minor, nil, 0xFFFF_FFFF, nil, gss_cred_usage_t(usage), &set,
                                                 &cred, nil, nil)
                }
            }
        }
        try check(major, minor, "gss_acquire_cred_from(\(key))")
        return cred
    }

    private static func take(_ buffer: inout gss_buffer_desc) -> [UInt8] {
        var minor: OM_uint32 = 0
        defer { _ = gss_release_buffer(&minor, &buffer) }
        guard buffer.length > 0, let value = buffer.value else { return [] }
        return Array(UnsafeRawBufferPointer(start: value, count: buffer.length))
    }

    /// Throws for routine/calling errors (GSS_ERROR), with the mechanism's message.
    static func check(_ major: OM_uint32, _ minor: OM_uint32, _ call: String) throws {
        guard major & 0xFFFF_0000 != 0 else { return }
        var context: OM_uint32 = 0
        var text = gss_buffer_desc(length: 0, value: nil)
        var m: OM_uint32 = 0
        _ = gss_display_status(&m, minor, 2 /* GSS_C_MECH_CODE */, nil, &context, &text)
        let message = String(decoding: take(&text), as: UTF8.self)
        throw MITGSSError(call: call, major: major, minor: minor, message: message)
    }
}

/// A failed MIT GSS call in ``MITGSSContext``.
package struct MITGSSError: Error, Sendable, CustomStringConvertible {
    package let call: String
    package let major: UInt32
    package let minor: UInt32
    package let message: String
    package var description: String { "\(call): major 0x\(String(major, radix: 16)), minor \(minor): \(message)" }
}
