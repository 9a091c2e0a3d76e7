/// Which protocol versions and protection suites a host accepts on its migration connections, incoming
/// (the destination) and outgoing (the moves its management service starts): host configuration key
/// `protection` (`{"minimumProtocolVersion": 2, "suites": [2]}`; both keys optional).
///
/// The default accepts everything this implementation speaks (protocol 1…2, suite 2 preferred over
/// suite 1), so version-1 and suite-1-only peers keep working. A deployment without such peers can
/// refuse them: a version-1-only peer then gets `ERROR_REVISION_MISMATCH` (0x80070519), a peer with no
/// suite in common `SEC_E_ALGORITHM_MISMATCH` (0x80090331), both before any credential is used. Refusing
/// version 1 also closes the one downgrade the transcript cannot see (an attacker rewriting `maxVersion`).
public struct ProtectionPolicy: Sendable, Hashable, Codable {
    /// The lowest protocol version accepted (1 or 2).
    public var minimumProtocolVersion: UInt16
    /// The suites accepted, in order of preference (not empty). Without suite 1 (RFC 4121 wrap), protocol 1
    /// is refused too: it has no other suite.
    public var suites: [ProtectionSuite]

    public init(minimumProtocolVersion: UInt16 = WireProtocol.minimumVersion,
                suites: [ProtectionSuite] = ProtectionSuite.preferred) {
        self.minimumProtocolVersion = minimumProtocolVersion
        self.suites = suites
    }

    /// Protocol 1…2, suites 2 then 1.
    public static let `default` = ProtectionPolicy()
    /// Protocol 2 and suite 2 (AES-256-GCM) only.
    public static let aeadOnly = ProtectionPolicy(minimumProtocolVersion: 2, suites: [.aes256GCM])

    private enum CodingKeys: String, CodingKey { case minimumProtocolVersion, suites }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(minimumProtocolVersion: try c.decodeIfPresent(UInt16.self, forKey: .minimumProtocolVersion) ?? WireProtocol.minimumVersion,
                  suites: try c.decodeIfPresent([ProtectionSuite].self, forKey: .suites) ?? ProtectionSuite.preferred)
    }

    /// What is wrong with the policy, in the words of the configuration file (nil: nothing).
    public var problem: String? {
        guard (WireProtocol.minimumVersion...WireProtocol.version).contains(minimumProtocolVersion) else {
            return "protection.minimumProtocolVersion must be \(WireProtocol.minimumVersion)…\(WireProtocol.version), not \(minimumProtocolVersion)"
        }
        guard !suites.isEmpty else { return "protection.suites must name at least one suite (1 RFC 4121 wrap, 2 AES-256-GCM)" }
        guard Set(suites).count == suites.count else { return "protection.suites names a suite twice" }
        return nil
    }

    /// The versions this policy lets `versions` speak (nil: none, the policy refuses them all).
    func versions(within versions: ClosedRange<UInt16>) -> ClosedRange<UInt16>? {
        let lowest = max(versions.lowerBound, suites.contains(.gssWrap) ? minimumProtocolVersion : 2)
        return lowest <= versions.upperBound ? lowest...versions.upperBound : nil
    }

    /// `settings` restricted to this policy: versions from ``minimumProtocolVersion``, only the policy's
    /// suites (in the settings' order). Nil when nothing is left.
    func restrict(_ settings: ProtocolSettings) -> ProtocolSettings? {
        guard let versions = versions(within: settings.versions) else { return nil }
        let suites = settings.suites.filter { self.suites.contains($0) }
        guard !suites.isEmpty else { return nil }
        return ProtocolSettings(versions: versions, suites: suites, rekeyInterval: settings.rekeyInterval)
    }
}

extension ProtectionSuite: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        let number = try c.decode(UInt8.self)
        guard let suite = ProtectionSuite(rawValue: number) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "unknown protection suite \(number) (1 RFC 4121 wrap, 2 AES-256-GCM)")
        }
        self = suite
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
}

extension MoveOptions {
    /// These options restricted to `policy` (the protocol versions and suites offered); throws when the
    /// policy leaves nothing to offer.
    public func restricted(to policy: ProtectionPolicy) throws(MigrationServiceError) -> MoveOptions {
        guard let settings = policy.restrict(protocolSettings) else {
            throw .configuration("the protection policy (protocol \(policy.minimumProtocolVersion)+, suites \(policy.suites.map(\.rawValue))) "
                                 + "leaves nothing of protocol \(protocolVersions) and suites \(suites.map(\.rawValue)) to offer",
                                 stage: .source)
        }
        var options = self
        options.protocolVersions = settings.versions
        options.suites = settings.suites
        return options
    }
}
