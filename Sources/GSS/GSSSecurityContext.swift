/// What ``GSSInitiatorContext`` and ``GSSAcceptorContext`` have in common once established:
/// inquiry and per-message protection (wrap/unwrap, MIC, in-place IOV forms). Write generic code
/// over either side with `some GSSSecurityContext` (both are `~Copyable`: pass them `inout`).
///
/// Per-message calls on a Kerberos context of enctype 17–20 run in `KerberosCrypto` (OpenSSL)
/// with the context's keys, producing and accepting exactly MIT's tokens; everything else runs in
/// MIT. ``protectionPath`` tells which; ``allowsFastProtection`` (or the environment variable
/// `MIGAUTH_GSS_FAST_PROTECTION=0`) turns the fast path off.
public protocol GSSSecurityContext: ~Copyable {
    /// True once the context is established on this side.
    var isComplete: Bool { get }
    /// The mechanism in use (Kerberos, or SPNEGO when requested).
    var mechanism: GSSMechanism { get }
    /// The flags the mechanism granted (check GSSContextFlags/mutual, GSSContextFlags/delegate, …).
    var grantedFlags: GSSContextFlags { get }
    /// Remaining lifetime at the last step (nil: indefinite).
    var lifetime: Duration? { get }

    /// Which code protects this context's messages: `.undecided` until the first per-message
    /// call, then `.kerberosCrypto(enctype:)` or `.mit` for the rest of the context's life.
    var protectionPath: GSSProtectionPath { get }

    /// Whether the first per-message call may choose `KerberosCrypto` (default: true unless
    /// `MIGAUTH_GSS_FAST_PROTECTION=0`). Only effective before the first per-message call: a
    /// context never changes paths, because MIT and KerberosCrypto keep separate sequence state.
    var allowsFastProtection: Bool { get set }

    /// Initiator and acceptor names, remaining lifetime and flags, from `gss_inquire_context`.
    func inquire() throws(GSSError) -> GSSContextInfo

    /// Protects `message` (`gss_wrap`): encrypted and signed, or only signed with `encrypt: false`;
    /// `qop` nil for the mechanism's default. Throws if encryption was requested and the context
    /// cannot provide it.
    mutating func wrap(_ message: [UInt8], encrypt: Bool, qop: UInt32?) throws(GSSError) -> [UInt8]

    /// Verifies (and decrypts) a wrapped token (`gss_unwrap`). Replayed, old, reordered or missing
    /// messages throw (→ `SEC_E_OUT_OF_SEQUENCE`); altered ones throw `SEC_E_MESSAGE_ALTERED`.
    mutating func unwrap(_ token: [UInt8]) throws(GSSError) -> GSSUnwrapped

    /// A detached signature over `message` (`gss_get_mic`); `qop` nil for the default.
    mutating func getMIC(_ message: [UInt8], qop: UInt32?) throws(GSSError) -> [UInt8]

    /// Checks a detached signature (`gss_verify_mic`); returns the QOP used (nil: the default).
    @discardableResult
    mutating func verifyMIC(_ message: [UInt8], mic: [UInt8]) throws(GSSError) -> UInt32?

    /// The largest message whose wrapped token fits in `maximumTokenSize` bytes (`gss_wrap_size_limit`).
    func wrapSizeLimit(maximumTokenSize: Int, encrypt: Bool, qop: UInt32?) throws(GSSError) -> Int

    /// Encrypts (or signs) `data` in place (`gss_wrap_iov`) and returns the header, padding and
    /// trailer to send around it: no copy of a large buffer.
    mutating func wrapInPlace(_ data: UnsafeMutableRawBufferPointer, encrypt: Bool,
                              qop: UInt32?) throws(GSSError) -> GSSWrappedIOV

    /// `wrapInPlace` over an array.
    mutating func wrapInPlace(_ data: inout [UInt8], encrypt: Bool, qop: UInt32?) throws(GSSError) -> GSSWrappedIOV

    /// Verifies and decrypts a whole wrapped token in place (`gss_unwrap_iov` with a STREAM buffer);
    /// the plaintext is at `range` within `token` afterwards.
    mutating func unwrapInPlace(_ token: UnsafeMutableRawBufferPointer) throws(GSSError) -> GSSUnwrappedIOV

    /// `unwrapInPlace` over an array.
    mutating func unwrapInPlace(_ token: inout [UInt8]) throws(GSSError) -> GSSUnwrappedIOV

    /// `GSS_Pseudo_random` (RFC 4401) with the key `prfKey` selects (GSSPseudoRandom.swift).
    func pseudoRandom(prfKey: GSSPRFKey, input: [UInt8], outputLength: Int) throws(GSSError) -> [UInt8]
}

// The defaults (encrypt, the mechanism's QOP) for callers generic over either side; the concrete
// types declare the same defaults on their own methods.
extension GSSSecurityContext where Self: ~Copyable {
    public mutating func wrap(_ message: [UInt8], encrypt: Bool = true) throws(GSSError) -> [UInt8] {
        try wrap(message, encrypt: encrypt, qop: nil)
    }

    public mutating func getMIC(_ message: [UInt8]) throws(GSSError) -> [UInt8] {
        try getMIC(message, qop: nil)
    }

    public func wrapSizeLimit(maximumTokenSize: Int, encrypt: Bool = true) throws(GSSError) -> Int {
        try wrapSizeLimit(maximumTokenSize: maximumTokenSize, encrypt: encrypt, qop: nil)
    }

    public mutating func wrapInPlace(_ data: UnsafeMutableRawBufferPointer,
                                     encrypt: Bool = true) throws(GSSError) -> GSSWrappedIOV {
        try wrapInPlace(data, encrypt: encrypt, qop: nil)
    }

    public mutating func wrapInPlace(_ data: inout [UInt8], encrypt: Bool = true) throws(GSSError) -> GSSWrappedIOV {
        try wrapInPlace(&data, encrypt: encrypt, qop: nil)
    }
}

// Each side forwards to the core it owns (the core stays package-internal).
extension GSSInitiatorContext: GSSSecurityContext {
    public var isComplete: Bool { core.isComplete }
    public var mechanism: GSSMechanism { core.mechanism }
    public var grantedFlags: GSSContextFlags { core.flags }
    public var lifetime: Duration? { core.lifetime }
    public var protectionPath: GSSProtectionPath { core.protection.path }
    public var allowsFastProtection: Bool {
        get { core.protection.allowed }
        set { core.protection.allowed = newValue }
    }

    public func inquire() throws(GSSError) -> GSSContextInfo { try core.inquire() }

    public mutating func wrap(_ message: [UInt8], encrypt: Bool = true, qop: UInt32? = nil) throws(GSSError) -> [UInt8] {
        try core.wrap(message, encrypt: encrypt, qop: qop)
    }

    public mutating func unwrap(_ token: [UInt8]) throws(GSSError) -> GSSUnwrapped { try core.unwrap(token) }

    public mutating func getMIC(_ message: [UInt8], qop: UInt32? = nil) throws(GSSError) -> [UInt8] {
        try core.getMIC(message, qop: qop)
    }

    @discardableResult
    public mutating func verifyMIC(_ message: [UInt8], mic: [UInt8]) throws(GSSError) -> UInt32? {
        try core.verifyMIC(message, mic: mic)
    }

    public func wrapSizeLimit(maximumTokenSize: Int, encrypt: Bool = true, qop: UInt32? = nil) throws(GSSError) -> Int {
        try core.wrapSizeLimit(maximumTokenSize: maximumTokenSize, encrypt: encrypt, qop: qop)
    }

    public mutating func wrapInPlace(_ data: UnsafeMutableRawBufferPointer, encrypt: Bool = true,
                                     qop: UInt32? = nil) throws(GSSError) -> GSSWrappedIOV {
        try core.wrapInPlace(data, encrypt: encrypt, qop: qop)
    }

    public mutating func wrapInPlace(_ data: inout [UInt8], encrypt: Bool = true,
                                     qop: UInt32? = nil) throws(GSSError) -> GSSWrappedIOV {
        try core.wrapInPlace(&data, encrypt: encrypt, qop: qop)
    }

    public mutating func unwrapInPlace(_ token: UnsafeMutableRawBufferPointer) throws(GSSError) -> GSSUnwrappedIOV {
        try core.unwrapInPlace(token)
    }

    public mutating func unwrapInPlace(_ token: inout [UInt8]) throws(GSSError) -> GSSUnwrappedIOV {
        try core.unwrapInPlace(&token)
    }
}

// Each side forwards to the core it owns (the core stays package-internal).
extension GSSAcceptorContext: GSSSecurityContext {
    public var isComplete: Bool { core.isComplete }
    public var mechanism: GSSMechanism { core.mechanism }
    public var grantedFlags: GSSContextFlags { core.flags }
    public var lifetime: Duration? { core.lifetime }
    public var protectionPath: GSSProtectionPath { core.protection.path }
    public var allowsFastProtection: Bool {
        get { core.protection.allowed }
        set { core.protection.allowed = newValue }
    }

    public func inquire() throws(GSSError) -> GSSContextInfo { try core.inquire() }

    public mutating func wrap(_ message: [UInt8], encrypt: Bool = true, qop: UInt32? = nil) throws(GSSError) -> [UInt8] {
        try core.wrap(message, encrypt: encrypt, qop: qop)
    }

    public mutating func unwrap(_ token: [UInt8]) throws(GSSError) -> GSSUnwrapped { try core.unwrap(token) }

    public mutating func getMIC(_ message: [UInt8], qop: UInt32? = nil) throws(GSSError) -> [UInt8] {
        try core.getMIC(message, qop: qop)
    }

    @discardableResult
    public mutating func verifyMIC(_ message: [UInt8], mic: [UInt8]) throws(GSSError) -> UInt32? {
        try core.verifyMIC(message, mic: mic)
    }

    public func wrapSizeLimit(maximumTokenSize: Int, encrypt: Bool = true, qop: UInt32? = nil) throws(GSSError) -> Int {
        try core.wrapSizeLimit(maximumTokenSize: maximumTokenSize, encrypt: encrypt, qop: qop)
    }

    public mutating func wrapInPlace(_ data: UnsafeMutableRawBufferPointer, encrypt: Bool = true,
                                     qop: UInt32? = nil) throws(GSSError) -> GSSWrappedIOV {
        try core.wrapInPlace(data, encrypt: encrypt, qop: qop)
    }

    public mutating func wrapInPlace(_ data: inout [UInt8], encrypt: Bool = true,
                                     qop: UInt32? = nil) throws(GSSError) -> GSSWrappedIOV {
        try core.wrapInPlace(&data, encrypt: encrypt, qop: qop)
    }

    public mutating func unwrapInPlace(_ token: UnsafeMutableRawBufferPointer) throws(GSSError) -> GSSUnwrappedIOV {
        try core.unwrapInPlace(token)
    }

    public mutating func unwrapInPlace(_ token: inout [UInt8]) throws(GSSError) -> GSSUnwrappedIOV {
        try core.unwrapInPlace(&token)
    }
}
