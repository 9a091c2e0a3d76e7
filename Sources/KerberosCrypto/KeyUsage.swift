/// A Kerberos key usage number (RFC 3961 §3); RFC 4121 §2 defines the four GSS ones.
package struct KeyUsage: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    package let rawValue: UInt32
    package init(rawValue: UInt32) { self.rawValue = rawValue }

    /// KG-USAGE-ACCEPTOR-SEAL: sealed Wrap tokens sent by the acceptor.
    package static let acceptorSeal = KeyUsage(rawValue: 22)
    /// KG-USAGE-ACCEPTOR-SIGN: MIC and unsealed Wrap tokens sent by the acceptor.
    package static let acceptorSign = KeyUsage(rawValue: 23)
    /// KG-USAGE-INITIATOR-SEAL: sealed Wrap tokens sent by the initiator.
    package static let initiatorSeal = KeyUsage(rawValue: 24)
    /// KG-USAGE-INITIATOR-SIGN: MIC and unsealed Wrap tokens sent by the initiator.
    package static let initiatorSign = KeyUsage(rawValue: 25)

    package var description: String { "key usage \(rawValue)" }
}
