import CGSSAPI

// Inquiry and per-message protection, forwarded to the shared core.
extension GSSInitiatorContext {
    /// True once the context is established on this side.
    public var isComplete: Bool { core.isComplete }
    /// The mechanism in use (Kerberos, or SPNEGO when requested).
    public var mechanism: GSSMechanism { core.mechanism }
    /// The flags the mechanism granted (check GSSContextFlags/mutual, GSSContextFlags/delegate, …).
    public var grantedFlags: GSSContextFlags { core.flags }
    /// Remaining lifetime in seconds at the last step (nil: indefinite).
    public var lifetime: UInt32? { core.lifetime }

    /// Initiator and acceptor names, remaining lifetime and flags, from `gss_inquire_context`.
    public func inquire() throws(GSSError) -> (initiator: GSSName, acceptor: GSSName?, lifetime: UInt32?,
                                                flags: GSSContextFlags, locallyInitiated: Bool, isOpen: Bool) {
        let i = try core.inquire()
        return (i.source, i.target, i.lifetime, i.flags, i.locallyInitiated, i.open)
    }

    /// Protects `message` (`gss_wrap`): encrypted and signed, or only signed with `encrypt: false`.
    /// Throws if encryption was requested and the context cannot provide it.
    public mutating func wrap(_ message: [UInt8], encrypt: Bool = true, qop: UInt32 = 0) throws(GSSError) -> [UInt8] {
        try core.wrap(message, encrypt: encrypt, qop: qop)
    }

    /// Verifies (and decrypts) a wrapped token (`gss_unwrap`). Replayed, old, reordered or missing
    /// messages throw (→ `SEC_E_OUT_OF_SEQUENCE`); altered ones throw `SEC_E_MESSAGE_ALTERED`.
    public mutating func unwrap(_ token: [UInt8]) throws(GSSError) -> GSSUnwrapped {
        try core.unwrap(token)
    }

    /// A detached signature over `message` (`gss_get_mic`).
    public mutating func getMIC(_ message: [UInt8], qop: UInt32 = 0) throws(GSSError) -> [UInt8] {
        try core.getMIC(message, qop: qop)
    }

    /// Checks a detached signature (`gss_verify_mic`); returns the QOP used.
    @discardableResult
    public mutating func verifyMIC(_ message: [UInt8], mic: [UInt8]) throws(GSSError) -> UInt32 {
        try core.verifyMIC(message, mic: mic)
    }

    /// The largest message whose wrapped token fits in `maximumTokenSize` bytes (`gss_wrap_size_limit`).
    public func wrapSizeLimit(maximumTokenSize: Int, encrypt: Bool = true, qop: UInt32 = 0) throws(GSSError) -> Int {
        try core.wrapSizeLimit(maximumTokenSize: maximumTokenSize, encrypt: encrypt, qop: qop)
    }

    /// Encrypts (or signs) `data` in place (`gss_wrap_iov`) and returns the header, padding and
    /// trailer to send around it: no copy of a large buffer.
    public mutating func wrapInPlace(_ data: UnsafeMutableRawBufferPointer, encrypt: Bool = true,
                                     qop: UInt32 = 0) throws(GSSError) -> GSSWrappedIOV {
        try core.wrapInPlace(data, encrypt: encrypt, qop: qop)
    }

    /// `wrapInPlace` over an array.
    public mutating func wrapInPlace(_ data: inout [UInt8], encrypt: Bool = true,
                                     qop: UInt32 = 0) throws(GSSError) -> GSSWrappedIOV {
        try data.withUnsafeMutableBytes { raw in
            Result { () throws(GSSError) in try core.wrapInPlace(raw, encrypt: encrypt, qop: qop) }
        }.get()
    }

    /// Verifies and decrypts a whole wrapped token in place (`gss_unwrap_iov` with a STREAM buffer);
    /// the plaintext is at `range` within `token` afterwards.
    public mutating func unwrapInPlace(_ token: UnsafeMutableRawBufferPointer) throws(GSSError) -> GSSUnwrappedIOV {
        try core.unwrapInPlace(token)
    }

    /// `unwrapInPlace` over an array.
    public mutating func unwrapInPlace(_ token: inout [UInt8]) throws(GSSError) -> GSSUnwrappedIOV {
        try token.withUnsafeMutableBytes { raw in
            Result { () throws(GSSError) in try core.unwrapInPlace(raw) }
        }.get()
    }
}
