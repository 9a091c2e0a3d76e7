/// The flags octet of RFC 4121 per-message tokens (§4.2.2).
package struct TokenFlags: OptionSet, Sendable, Hashable {
    package let rawValue: UInt8
    package init(rawValue: UInt8) { self.rawValue = rawValue }

    /// The sender is the context acceptor.
    package static let sentByAcceptor = TokenFlags(rawValue: 0x01)
    /// The Wrap token's data is encrypted.
    package static let sealed = TokenFlags(rawValue: 0x02)
    /// The acceptor subkey protects the token.
    package static let acceptorSubkey = TokenFlags(rawValue: 0x04)
}
