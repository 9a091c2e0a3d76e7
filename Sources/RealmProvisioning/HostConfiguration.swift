import Directory
import Foundation
import Hosts
import MigrationRules

/// The configuration file of one real host daemon (`migauth serve --config host.json`), generated
/// from the simulated host's migration settings.
///
/// The field names follow the MigrationService's `HostConfiguration` (docs/migration-service.md);
/// this copy lets the host layout be generated and tested without that module.
public struct HostConfiguration: Sendable, Hashable, Codable {
    public var name: String
    public var fqdn: String
    /// The loopback address the daemon binds (127.0.0.11, …).
    public var address: String
    public var realm: String
    /// The service keytab (`host/`, `Microsoft Virtual System Migration Service/`, `cifs/`).
    public var keytab: String
    /// The keytab the host gets its own TGT from (`host/<fqdn>`).
    public var clientKeytab: String
    /// Where users' ccaches on this host live (`<user>.cc`).
    public var ccacheDirectory: String
    /// `Enable-VMMigration` / `Disable-VMMigration`.
    public var migrationEnabled: Bool
    /// 0 = ephemeral.
    public var migrationPort: Int
    public var managementPort: Int
    /// Rule P1: principals (`alice@REALM`) in local Administrators or Hyper-V Administrators,
    /// expanded through domain groups as the host's logon DC sees them.
    public var allowedUsers: [String]
    /// Rule N1: the listed incoming networks, translated to the loopback addresses of the hosts
    /// whose simulated addresses they contain (`127.0.0.12/32`).
    public var incomingNetworks: [String]
    public var useAnyNetwork: Bool
    /// Rule N2.
    public var maximumMigrations: Int
    public var performanceOption: String
    public var vmDirectory: String
    /// FQDN → loopback address of every host.
    public var hosts: [String: String]

    /// The configuration for `host` in `world`, with paths from `layout`.
    public static func make(for host: Hosts.Host, world: World, layout: HostLayout) -> HostConfiguration? {
        guard let entry = layout.entry(host.name) else { return nil }
        let realm = RealmModel.realmName(of: world)
        let m = host.migration
        return HostConfiguration(
            name: host.name, fqdn: entry.fqdn, address: entry.address, realm: realm,
            keytab: entry.keytab, clientKeytab: entry.clientKeytab, ccacheDirectory: entry.ccacheDirectory,
            migrationEnabled: m.enabled, migrationPort: 0, managementPort: 0,
            allowedUsers: permittedUsers(host, world: world).map { "\($0)@\(realm)" },
            incomingNetworks: loopbackNetworks(m.networks.map(\.subnet), world: world, layout: layout),
            useAnyNetwork: m.useAnyNetwork, maximumMigrations: m.maximumMigrations,
            performanceOption: m.performanceOption.rawValue, vmDirectory: entry.vmDirectory,
            hosts: Dictionary(uniqueKeysWithValues: layout.entries.map { ($0.fqdn, $0.address) }))
    }

    /// Users of the realm's domain allowed to migrate on `host` (rule P1), sorted principal names.
    public static func permittedUsers(_ host: Hosts.Host, world: World) -> [String] {
        let dir = world.directory
        guard let domain = dir.domainOrder.first, let replica = dir.replica(of: domain, on: host.logonDC) else { return [] }
        let members = (host.localGroups[.administrators] ?? []).union(host.localGroups[.hyperVAdministrators] ?? [])
        var out: [String] = []
        for user in replica.users.values {
            let ref = PrincipalRef(normalizedDomain: domain, name: user.key)
            let allowed = members.contains(ref) || members.contains {
                dir.isMember(ref, of: $0, replica: replica, replicaDomain: domain, on: host.logonDC)
            }
            if allowed { out.append(PrincipalNames.user(user)) }
        }
        return out.sorted()
    }

    /// Subnets → `/32`s of the loopback addresses of hosts with a simulated address inside them.
    static func loopbackNetworks(_ subnets: [IPv4Subnet], world: World, layout: HostLayout) -> [String] {
        var out: [String] = []
        for subnet in subnets {
            for h in world.allHosts where h.addresses.contains(where: subnet.contains) {
                if let e = layout.entry(h.name), !out.contains(e.address + "/32") { out.append(e.address + "/32") }
            }
        }
        return out
    }

    /// Pretty, sorted JSON.
    public func jsonData() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try e.encode(self)
    }
}
