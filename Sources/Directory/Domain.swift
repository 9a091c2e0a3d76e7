/// An Active Directory domain: its DNS name (`contoso.com`) and NetBIOS name (`CONTOSO`).
public struct Domain: Sendable, Hashable, Codable, CustomStringConvertible {
    public var dnsName: String
    public var netBIOSName: String

    public init(dnsName: String, netBIOSName: String? = nil) {
        self.dnsName = dnsName
        self.netBIOSName = netBIOSName ?? String(dnsName.split(separator: ".").first ?? Substring(dnsName)).uppercased()
    }

    /// The lower-cased DNS name, the key the directory files domains under.
    public var key: String { dnsName.lowercased() }

    /// `DC=contoso,DC=com`.
    public var distinguishedName: String {
        dnsName.split(separator: ".").map { "DC=\($0)" }.joined(separator: ",")
    }

    /// The Kerberos realm, `CONTOSO.COM`.
    public var realm: String { dnsName.uppercased() }

    public var description: String { "\(dnsName) (\(netBIOSName))" }
}

/// Direction of a trust, as AD's `trustDirection` attribute stores it on the trusting side's
/// `trustedDomain` object: 1 inbound (the partner trusts us), 2 outbound (we trust the partner), 3 both.
public enum TrustDirection: Int, Sendable, Hashable, Codable, CaseIterable {
    case inbound = 1
    case outbound = 2
    case bidirectional = 3
}

/// A `trustedDomain` object held by `domain`, naming `partner`.
public struct Trust: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The domain holding the trust object (lower-cased DNS name).
    public var domain: String
    /// `trustPartner` (lower-cased DNS name).
    public var partner: String
    public var direction: TrustDirection

    public init(domain: String, partner: String, direction: TrustDirection) {
        self.domain = domain.lowercased()
        self.partner = partner.lowercased()
        self.direction = direction
    }

    /// A trust in which `trusting` accepts accounts of `trusted` (one-way).
    public static func oneWay(trusting: String, trusted: String) -> Trust {
        Trust(domain: trusting, partner: trusted, direction: .outbound)
    }

    /// Two domains that trust each other.
    public static func twoWay(_ a: String, _ b: String) -> Trust {
        Trust(domain: a, partner: b, direction: .bidirectional)
    }

    public var description: String {
        switch direction {
        case .outbound: return "\(domain) trusts \(partner)"
        case .inbound: return "\(partner) trusts \(domain)"
        case .bidirectional: return "\(domain) and \(partner) trust each other"
        }
    }
}
