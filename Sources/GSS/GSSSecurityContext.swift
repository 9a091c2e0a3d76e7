/// What ``GSSInitiatorContext`` and ``GSSAcceptorContext`` have in common once established:
/// inquiry and per-message protection (wrap/unwrap, MIC, in-place IOV forms). Write generic code
/// over either side with `some GSSSecurityContext` (both are `~Copyable`: pass them `inout`).
///
/// Per-message calls on a Kerberos context of enctype 17–20 run in `KerberosCrypto` (OpenSSL)
/// with the context's keys, producing and accepting exactly MIT's tokens; everything else runs in
/// MIT. ``protectionPath`` tells which; ``allowsFastProtection`` (or the environment variable
/// `MIGAUTH_GSS_FAST_PROTECTION=0`) turns the fast path off.
public protocol GSSSecurityContext: ~Copyable {
    /// Implementation detail: the context's handle and state, opaque outside the module.
    var _core: GSSContextCore { get set }
}

extension GSSSecurityContext where Self: ~Copyable {
    /// True once the context is established on this side.
    public var isComplete: Bool { _core.isComplete }
    /// The mechanism in use (Kerberos, or SPNEGO when requested).
    public var mechanism: GSSMechanism { _core.mechanism }
    /// The flags the mechanism granted (check GSSContextFlags/mutual, GSSContextFlags/delegate, …).
    public var grantedFlags: GSSContextFlags { _core.flags }
    /// Remaining lifetime in seconds at the last step (nil: indefinite).
    public var lifetime: UInt32? { _core.lifetime }

    /// Which code protects this context's messages: `.undecided` until the first per-message
    /// call, then `.kerberosCrypto(enctype:)` or `.mit` for the rest of the context's life.
    public var protectionPath: GSSProtectionPath { _core.protection.path }

    /// Whether the first per-message call may choose `KerberosCrypto` (default: true unless
    /// `MIGAUTH_GSS_FAST_PROTECTION=0`). Only effective before the first per-message call: a
    /// context never changes paths, because MIT and KerberosCrypto keep separate sequence state.
    public var allowsFastProtection: Bool {
        get { _core.protection.allowed }
        set { _core.protection.allowed = newValue }
    }

    /// Initiator and acceptor names, remaining lifetime and flags, from `gss_inquire_context`.
    public func inquire() throws(GSSError) -> (initiator: GSSName, acceptor: GSSName?, lifetime: UInt32?,
                                                flags: GSSContextFlags, locallyInitiated: Bool, isOpen: Bool) {
        try _core.inquireContext()
    }

    /// Protects `message` (`gss_wrap`): encrypted and signed, or only signed with `encrypt: false`.
    /// Throws if encryption was requested and the context cannot provide it.
    public mutating func wrap(_ message: [UInt8], encrypt: Bool = true, qop: UInt32 = 0) throws(GSSError) -> [UInt8] {
        try _core.wrap(message, encrypt: encrypt, qop: qop)
    }

    /// Verifies (and decrypts) a wrapped token (`gss_unwrap`). Replayed, old, reordered or missing
    /// messages throw (→ `SEC_E_OUT_OF_SEQUENCE`); altered ones throw `SEC_E_MESSAGE_ALTERED`.
    public mutating func unwrap(_ token: [UInt8]) throws(GSSError) -> GSSUnwrapped {
        try _core.unwrap(token)
    }

    /// A detached signature over `message` (`gss_get_mic`).
    public mutating func getMIC(_ message: [UInt8], qop: UInt32 = 0) throws(GSSError) -> [UInt8] {
        try _core.getMIC(message, qop: qop)
    }

    /// Checks a detached signature (`gss_verify_mic`); returns the QOP used.
    @discardableResult
    public mutating func verifyMIC(_ message: [UInt8], mic: [UInt8]) throws(GSSError) -> UInt32 {
        try _core.verifyMIC(message, mic: mic)
    }

    /// The largest message whose wrapped token fits in `maximumTokenSize` bytes (`gss_wrap_size_limit`).
    public func wrapSizeLimit(maximumTokenSize: Int, encrypt: Bool = true, qop: UInt32 = 0) throws(GSSError) -> Int {
        try _core.wrapSizeLimit(maximumTokenSize: maximumTokenSize, encrypt: encrypt, qop: qop)
    }

    /// Encrypts (or signs) `data` in place (`gss_wrap_iov`) and returns the header, padding and
    /// trailer to send around it: no copy of a large buffer.
    public mutating func wrapInPlace(_ data: UnsafeMutableRawBufferPointer, encrypt: Bool = true,
                                     qop: UInt32 = 0) throws(GSSError) -> GSSWrappedIOV {
        try _core.wrapInPlace(data, encrypt: encrypt, qop: qop)
    }

    /// `wrapInPlace` over an array.
    public mutating func wrapInPlace(_ data: inout [UInt8], encrypt: Bool = true,
                                     qop: UInt32 = 0) throws(GSSError) -> GSSWrappedIOV {
        try _core.wrapInPlace(&data, encrypt: encrypt, qop: qop)
    }

    /// Verifies and decrypts a whole wrapped token in place (`gss_unwrap_iov` with a STREAM buffer);
    /// the plaintext is at `range` within `token` afterwards.
    public mutating func unwrapInPlace(_ token: UnsafeMutableRawBufferPointer) throws(GSSError) -> GSSUnwrappedIOV {
        try _core.unwrapInPlace(token)
    }

    /// `unwrapInPlace` over an array.
    public mutating func unwrapInPlace(_ token: inout [UInt8]) throws(GSSError) -> GSSUnwrappedIOV {
        try _core.unwrapInPlace(&token)
    }
}

extension GSSInitiatorContext: GSSSecurityContext {
    public var _core: GSSContextCore {
        _read { yield core }
        _modify { yield &core }
    }
}

extension GSSAcceptorContext: GSSSecurityContext {
    public var _core: GSSContextCore {
        _read { yield core }
        _modify { yield &core }
    }
}
