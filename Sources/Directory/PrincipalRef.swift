/// A reference to a domain account: its domain (lower-cased DNS name) and `sAMAccountName`
/// (lower-cased, a computer's with its trailing `$`).
public struct PrincipalRef: Sendable, Hashable, Codable, Comparable, CustomStringConvertible {
    public var domain: String
    public var name: String

    public init(domain: String, name: String) {
        self.domain = domain.lowercased()
        self.name = name.lowercased()
    }

    /// A reference from parts that are already lower-cased (no normalisation; for hot paths).
    @inlinable
    public init(normalizedDomain domain: String, name: String) {
        self.domain = domain
        self.name = name
    }

    public static func < (a: PrincipalRef, b: PrincipalRef) -> Bool {
        (a.domain, a.name) < (b.domain, b.name)
    }

    /// `contoso.com\alice`.
    public var description: String { "\(domain)\\\(name)" }
}
