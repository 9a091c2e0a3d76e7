import CGSSAPI
import KerberosCrypto

/// The security context state shared by initiator and acceptor (package-internal): owns the
/// `gss_ctx_id_t` and deletes it exactly once, and the per-message path chosen for it.
/// Non-copyable, so only one owner can use it at a time.
package struct GSSContextCore: ~Copyable {
    var handle: gss_ctx_id_t? = nil
    var mechanism: GSSMechanism
    var isComplete = false
    var flags: GSSContextFlags = []
    var lifetime: Duration? = nil
    /// MIT or KerberosCrypto for per-message calls (decided on the first one).
    var protection = GSSFastProtection()

    init(mechanism: GSSMechanism) { self.mechanism = mechanism }

    deinit {
        guard handle != nil else { return }
        var minor: OM_uint32 = 0
        var h = handle
        gss_delete_sec_context(&minor, &h, nil)
    }

    func requireReady(_ operation: GSSOperation) throws(GSSError) -> gss_ctx_id_t {
        guard isComplete || flags.contains(.protectionReady), let handle else {
            throw GSSError(operation, .noContext, "The security context is not established yet")
        }
        return handle
    }

    /// The KerberosCrypto context to protect messages with, or nil for MIT's path.
    mutating func fast(qop: UInt32? = nil) -> ProtectionContext? {
        protection.context(qop: qop ?? 0, handle: handle, isComplete: isComplete, flags: flags)
    }

    func error(_ operation: GSSOperation, _ major: OM_uint32, _ minor: OM_uint32) -> GSSError {
        GSSError(operation, major: major, minor: minor)
    }

    /// Supplementary bits a per-message call must not pass silently.
    static let sequenceProblems = GSSMajorStatus.duplicateToken | GSSMajorStatus.oldToken
        | GSSMajorStatus.unseqToken | GSSMajorStatus.gapToken

    /// `gss_inquire_context`. MIT's source/target are the initiator/acceptor names whichever
    /// side asks.
    func inquire() throws(GSSError) -> GSSContextInfo {
        guard let handle else { throw GSSError(.inquireContext, .noContext, "No security context") }
        var minor: OM_uint32 = 0
        var src: gss_name_t? = nil
        var targ: gss_name_t? = nil
        var lifetime: OM_uint32 = 0
        var flags: OM_uint32 = 0
        var local: Int32 = 0
        var open: Int32 = 0
        let major = gss_inquire_context(&minor, handle, &src, &targ, &lifetime, nil, &flags, &local, &open)
        let source = src.map(GSSName.init(owning:))
        let target = targ.map(GSSName.init(owning:))
        guard major == 0, let source else { throw error(.inquireContext, major, minor) }
        return GSSContextInfo(initiator: source, acceptor: target, lifetime: GSSLifetime.reported(lifetime),
                              flags: GSSContextFlags(rawValue: flags), isLocallyInitiated: local != 0,
                              isOpen: open != 0)
    }

    mutating func wrap(_ message: [UInt8], encrypt: Bool, qop: UInt32?) throws(GSSError) -> [UInt8] {
        let handle = try requireReady(.wrap)
        if let fast = fast(qop: qop) { return try fastCall(.wrap) { try fast.wrap(message, confidential: encrypt) } }
        var minor: OM_uint32 = 0
        var conf: Int32 = 0
        var output = gss_buffer_desc()
        let major = message.withUnsafeBytes { raw in
            var input = gss_buffer_desc(length: raw.count, value: UnsafeMutableRawPointer(mutating: raw.baseAddress))
            return gss_wrap(&minor, handle, encrypt ? 1 : 0, qop ?? GSSQOP.default, &input, &conf, &output)
        }
        defer { gss_release_buffer(&minor, &output) }
        guard major == 0 else { throw error(.wrap, major, minor) }
        if encrypt && conf == 0 {
            throw GSSError(.wrap, .unavailable, "Confidentiality was requested but the context cannot encrypt")
        }
        return output.bytes
    }

    mutating func unwrap(_ token: [UInt8]) throws(GSSError) -> GSSUnwrapped {
        let handle = try requireReady(.unwrap)
        if let fast = fast() {
            // MIT's mechanism glue refuses an empty token before the mechanism sees it.
            guard !token.isEmpty else { throw GSSError(.unwrap, .callInaccessibleRead, "Empty token") }
            let unwrapped = try fastCall(.unwrap) { try fast.unwrap(token) }
            return GSSUnwrapped(message: unwrapped.data, confidential: unwrapped.info.confidential, qop: nil)
        }
        var minor: OM_uint32 = 0
        var conf: Int32 = 0
        var qop: gss_qop_t = 0
        var output = gss_buffer_desc()
        let major = token.withUnsafeBytes { raw in
            var input = gss_buffer_desc(length: raw.count, value: UnsafeMutableRawPointer(mutating: raw.baseAddress))
            return gss_unwrap(&minor, handle, &input, &output, &conf, &qop)
        }
        defer { gss_release_buffer(&minor, &output) }
        guard major & 0xFFFF_0000 == 0, major & Self.sequenceProblems == 0 else {
            throw error(.unwrap, major, minor)
        }
        return GSSUnwrapped(message: output.bytes, confidential: conf != 0, qop: GSSQOP.reported(qop))
    }

    mutating func getMIC(_ message: [UInt8], qop: UInt32?) throws(GSSError) -> [UInt8] {
        let handle = try requireReady(.getMIC)
        if let fast = fast(qop: qop) { return try fastCall(.getMIC) { try fast.getMIC(message) } }
        var minor: OM_uint32 = 0
        var output = gss_buffer_desc()
        let major = message.withUnsafeBytes { raw in
            var input = gss_buffer_desc(length: raw.count, value: UnsafeMutableRawPointer(mutating: raw.baseAddress))
            return gss_get_mic(&minor, handle, qop ?? GSSQOP.default, &input, &output)
        }
        defer { gss_release_buffer(&minor, &output) }
        guard major == 0 else { throw error(.getMIC, major, minor) }
        return output.bytes
    }

    mutating func verifyMIC(_ message: [UInt8], mic: [UInt8]) throws(GSSError) -> UInt32? {
        let handle = try requireReady(.verifyMIC)
        if let fast = fast() {
            guard !mic.isEmpty else { throw GSSError(.verifyMIC, .callInaccessibleRead, "Empty token") }
            _ = try fastCall(.verifyMIC) { try fast.verifyMIC(message, token: mic) }
            return nil
        }
        var minor: OM_uint32 = 0
        var qop: gss_qop_t = 0
        let major = message.withUnsafeBytes { m in
            mic.withUnsafeBytes { t in
                var msg = gss_buffer_desc(length: m.count, value: UnsafeMutableRawPointer(mutating: m.baseAddress))
                var tok = gss_buffer_desc(length: t.count, value: UnsafeMutableRawPointer(mutating: t.baseAddress))
                return gss_verify_mic(&minor, handle, &msg, &tok, &qop)
            }
        }
        guard major & 0xFFFF_0000 == 0, major & Self.sequenceProblems == 0 else {
            throw error(.verifyMIC, major, minor)
        }
        return GSSQOP.reported(qop)
    }

    func wrapSizeLimit(maximumTokenSize: Int, encrypt: Bool, qop: UInt32?) throws(GSSError) -> Int {
        let handle = try requireReady(.wrapSizeLimit)
        var minor: OM_uint32 = 0
        var limit: OM_uint32 = 0
        let requested = OM_uint32(clamping: maximumTokenSize)
        let major = gss_wrap_size_limit(&minor, handle, encrypt ? 1 : 0, qop ?? GSSQOP.default, requested, &limit)
        guard major == 0 else { throw error(.wrapSizeLimit, major, minor) }
        return Int(limit)
    }

    mutating func wrapInPlace(_ data: UnsafeMutableRawBufferPointer, encrypt: Bool,
                              qop: UInt32?) throws(GSSError) -> GSSWrappedIOV {
        let handle = try requireReady(.wrapIOV)
        if let fast = fast(qop: qop) {
            let (header, trailer) = try fastCall(.wrapIOV) { try fast.wrapInPlace(data, confidential: encrypt) }
            return GSSWrappedIOV(header: header, padding: [], trailer: trailer)
        }
        var minor: OM_uint32 = 0
        var conf: Int32 = 0
        let allocate = OM_uint32(GSS_IOV_BUFFER_FLAG_ALLOCATE)
        var iov = [
            gss_iov_buffer_desc(type: OM_uint32(GSS_IOV_BUFFER_TYPE_HEADER) | allocate, buffer: gss_buffer_desc()),
            gss_iov_buffer_desc(type: OM_uint32(GSS_IOV_BUFFER_TYPE_DATA),
                                buffer: gss_buffer_desc(length: data.count, value: data.baseAddress)),
            gss_iov_buffer_desc(type: OM_uint32(GSS_IOV_BUFFER_TYPE_PADDING) | allocate, buffer: gss_buffer_desc()),
            gss_iov_buffer_desc(type: OM_uint32(GSS_IOV_BUFFER_TYPE_TRAILER) | allocate, buffer: gss_buffer_desc()),
        ]
        let major = iov.withUnsafeMutableBufferPointer { buf in
            gss_wrap_iov(&minor, handle, encrypt ? 1 : 0, qop ?? GSSQOP.default, &conf, buf.baseAddress, Int32(buf.count))
        }
        defer {
            var m: OM_uint32 = 0
            iov.withUnsafeMutableBufferPointer { buf in _ = gss_release_iov_buffer(&m, buf.baseAddress, Int32(buf.count)) }
        }
        guard major == 0 else { throw error(.wrapIOV, major, minor) }
        if encrypt && conf == 0 {
            throw GSSError(.wrapIOV, .unavailable, "Confidentiality was requested but the context cannot encrypt")
        }
        return GSSWrappedIOV(header: iov[0].buffer.bytes, padding: iov[2].buffer.bytes, trailer: iov[3].buffer.bytes)
    }

    mutating func unwrapInPlace(_ token: UnsafeMutableRawBufferPointer) throws(GSSError) -> GSSUnwrappedIOV {
        let handle = try requireReady(.unwrapIOV)
        guard let base = token.baseAddress else {
            throw GSSError(.unwrapIOV, .defectiveToken, "Empty token")
        }
        if let fast = fast() {
            let (range, info) = try fastCall(.unwrapIOV) { try fast.unwrap(inPlace: token) }
            return GSSUnwrappedIOV(range: range, confidential: info.confidential, qop: nil)
        }
        var minor: OM_uint32 = 0
        var conf: Int32 = 0
        var qop: gss_qop_t = 0
        var iov = [
            gss_iov_buffer_desc(type: OM_uint32(GSS_IOV_BUFFER_TYPE_STREAM),
                                buffer: gss_buffer_desc(length: token.count, value: base)),
            gss_iov_buffer_desc(type: OM_uint32(GSS_IOV_BUFFER_TYPE_DATA), buffer: gss_buffer_desc()),
        ]
        let major = iov.withUnsafeMutableBufferPointer { buf in
            gss_unwrap_iov(&minor, handle, &conf, &qop, buf.baseAddress, Int32(buf.count))
        }
        guard major & 0xFFFF_0000 == 0, major & Self.sequenceProblems == 0 else {
            throw error(.unwrapIOV, major, minor)
        }
        let data = iov[1].buffer
        guard let start = data.value, start >= UnsafeMutableRawPointer(base),
              start + data.length <= base + token.count else {
            throw GSSError(.unwrapIOV, .failure, "The mechanism returned data outside the token")
        }
        let offset = start - UnsafeMutableRawPointer(base)
        return GSSUnwrappedIOV(range: offset..<(offset + data.length), confidential: conf != 0,
                               qop: GSSQOP.reported(qop))
    }
}

// Shared by the initiator's and the acceptor's public forwarding methods.
extension GSSContextCore {
    mutating func wrapInPlace(_ data: inout [UInt8], encrypt: Bool, qop: UInt32?) throws(GSSError) -> GSSWrappedIOV {
        try data.withUnsafeMutableBytes { raw in
            Result { () throws(GSSError) in try wrapInPlace(raw, encrypt: encrypt, qop: qop) }
        }.get()
    }

    mutating func unwrapInPlace(_ token: inout [UInt8]) throws(GSSError) -> GSSUnwrappedIOV {
        try token.withUnsafeMutableBytes { raw in
            Result { () throws(GSSError) in try unwrapInPlace(raw) }
        }.get()
    }
}

/// A message recovered by `unwrap`.
public struct GSSUnwrapped: Sendable, Hashable {
    public let message: [UInt8]
    /// True when the message was encrypted (not only signed).
    public let confidential: Bool
    /// The quality of protection the sender used; nil for the mechanism's default.
    public let qop: UInt32?
}

/// The parts `wrapInPlace` adds around the data it encrypted in place. On the wire the message
/// is `header + data + padding + trailer`, which `unwrapInPlace` (and `unwrap`) accept.
public struct GSSWrappedIOV: Sendable, Hashable {
    public let header: [UInt8]
    public let padding: [UInt8]
    public let trailer: [UInt8]
}

/// Where `unwrapInPlace` left the plaintext inside the token buffer.
public struct GSSUnwrappedIOV: Sendable, Hashable {
    /// Byte range of the plaintext within the buffer given to `unwrapInPlace`.
    public let range: Range<Int>
    public let confidential: Bool
    /// The quality of protection the sender used; nil for the mechanism's default.
    public let qop: UInt32?
}

/// Quality of protection at the C boundary: `GSS_C_QOP_DEFAULT` (0) is nil in the Swift API.
package enum GSSQOP {
    package static let `default`: UInt32 = 0

    package static func reported(_ qop: UInt32) -> UInt32? { qop == Self.default ? nil : qop }
}
