import MigrationVocabulary

/// What a destination enforces. Changed at run time with `MigrationDestination.update(_:)`.
public struct DestinationConfiguration: Sendable, Hashable {
    /// The host's name as users know it (`TestServer02`).
    public var hostName: String
    /// The host's FQDN: the migration SPN is `Microsoft Virtual System Migration Service/<fqdn>`.
    public var fqdn: String
    /// The Kerberos realm (qualifies the SPN and bare user names in `allowedUsers`).
    public var realm: String?
    /// Keytab holding the migration SPN's keys.
    public var keytab: String
    /// Where VMs live (`VMStore`).
    public var vmDirectory: String
    /// P1: principals allowed to migrate (members of Administrators / Hyper-V Administrators).
    public var allowedUsers: [String]
    /// N1: incoming migration networks.
    public var incomingNetworks: [IPv4Subnet]
    /// N1: accept on any address (S1 warns about it).
    public var useAnyNetwork: Bool
    /// N2: simultaneous migrations.
    public var maximumMigrations: Int
    /// P3: live migration enabled.
    public var migrationEnabled: Bool
    /// The NetBIOS name of the realm's domain (`CONTOSO`): users are shown as `CONTOSO\bob`, as
    /// Windows does; without it, as their principal name.
    public var netbiosDomain: String?
    /// P4: this host's generation; offers of VMs from a later generation are refused (nil: not checked).
    public var osGeneration: OSGeneration?
    /// Free-space reserve, connection caps, timeouts (``ServiceLimits``).
    public var limits: ServiceLimits
    /// The protocol versions and protection suites accepted (default: all; ``ProtectionPolicy/aeadOnly``
    /// refuses protocol 1 and suite 1).
    public var protection: ProtectionPolicy

    public init(hostName: String, fqdn: String, realm: String? = nil, keytab: String, vmDirectory: String,
                allowedUsers: [String], incomingNetworks: [IPv4Subnet] = [], useAnyNetwork: Bool = false,
                maximumMigrations: Int = 2, migrationEnabled: Bool = true, netbiosDomain: String? = nil,
                osGeneration: OSGeneration? = nil, limits: ServiceLimits = .default,
                protection: ProtectionPolicy = .default) {
        self.limits = limits
        self.protection = protection
        self.netbiosDomain = netbiosDomain
        self.osGeneration = osGeneration
        self.hostName = hostName
        self.fqdn = fqdn
        self.realm = realm
        self.keytab = keytab
        self.vmDirectory = vmDirectory
        self.allowedUsers = allowedUsers
        self.incomingNetworks = incomingNetworks
        self.useAnyNetwork = useAnyNetwork
        self.maximumMigrations = maximumMigrations
        self.migrationEnabled = migrationEnabled
    }

    /// `Microsoft Virtual System Migration Service/<fqdn>[@REALM]`.
    public var servicePrincipal: String { MigrationServiceNames.migrationPrincipal(fqdn: fqdn, realm: realm) }

    /// P1: whether `principal` may migrate here. Bare entries get `@realm`.
    public func allows(_ principal: String) -> Bool {
        allowedUsers.contains { entry in
            entry == principal || (!entry.contains("@") && realm.map { "\(entry)@\($0)" } == principal)
        }
    }

    /// How Windows names `principal` in its texts: `NETBIOS\user` for a user of this realm when
    /// the NetBIOS name is known, else the principal name.
    public func displayName(of principal: String) -> String {
        guard let netbiosDomain, let realm, let at = principal.lastIndex(of: "@"),
              principal[principal.index(after: at)...].caseInsensitiveCompare(realm) == .orderedSame else { return principal }
        return "\(netbiosDomain)\\\(principal[..<at])"
    }

    /// N1: whether a connection that arrived on `address` may migrate.
    public func acceptsNetwork(_ address: String) -> Bool {
        if useAnyNetwork { return true }
        guard let a = IPv4Address(address) else { return false }
        return incomingNetworks.contains { $0.contains(a) }
    }
}

/// Service principal names used by the service.
public enum MigrationServiceNames {
    /// Hyper-V's migration service class.
    public static let migrationService = "Microsoft Virtual System Migration Service"

    /// `Microsoft Virtual System Migration Service/<fqdn>[@REALM]`.
    public static func migrationPrincipal(fqdn: String, realm: String?) -> String {
        qualified("\(migrationService)/\(fqdn)", realm: realm)
    }

    /// `host/<fqdn>[@REALM]`: the management service's principal.
    public static func hostPrincipal(fqdn: String, realm: String?) -> String {
        qualified("host/\(fqdn)", realm: realm)
    }

    static func qualified(_ principal: String, realm: String?) -> String {
        guard let realm, !principal.contains("@") else { return principal }
        return "\(principal)@\(realm)"
    }
}
