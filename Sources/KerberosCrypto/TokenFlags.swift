/// The flags octet of RFC 4121 per-message tokens (§4.2.2).
public struct TokenFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// The sender is the context acceptor.
    public static let sentByAcceptor = TokenFlags(rawValue: 0x01)
    /// The Wrap token's data is encrypted.
    public static let sealed = TokenFlags(rawValue: 0x02)
    /// The acceptor subkey protects the token.
    public static let acceptorSubkey = TokenFlags(rawValue: 0x04)
}
