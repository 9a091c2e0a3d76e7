import Directory
import Foundation
import Hosts
import MigrationRules
import MigrationService

extension HostConfiguration {
    /// The daemon configuration of `host` in `world` (its migration settings), with paths, address
    /// and ports from `layout`.
    public static func make(for host: Hosts.SimulatedHost, world: World, layout: HostLayout) -> HostConfiguration? {
        guard let e = layout.entry(host.name) else { return nil }
        let realm = host.domain.isEmpty ? RealmModel.realmName(of: world) : RealmModel.realmName(ofDomain: host.domain)
        let m = host.migration
        return HostConfiguration(
            name: host.name, fqdn: e.fqdn, address: e.address, realm: realm, keytab: e.keytab,
            clientKeytab: e.clientKeytab, ccacheDirectory: e.directory,
            migrationEnabled: m.enabled && host.hypervisorInstalled,
            migrationPort: e.migrationPort, managementPort: e.managementPort,
            allowedUsers: qualified(permittedUsers, host, world: world),
            incomingNetworks: loopbackNetworks(m.networks.map(\.subnet), world: world, layout: layout),
            useAnyNetwork: m.useAnyNetwork, maximumMigrations: m.maximumMigrations,
            performanceOption: m.performanceOption,
            vmDirectory: e.vmDirectory,
            hosts: Dictionary(uniqueKeysWithValues: layout.entries.map { ($0.fqdn, $0.address) }),
            netbiosDomain: world.directory.domainOrder.first.flatMap { world.directory.domain($0)?.domain.netBIOSName },
            authenticationType: m.authenticationType,
            protectedUsers: qualified(nonDelegableUsers, host, world: world),
            credentialGuard: host.credentialGuard,
            osGeneration: host.os)
    }

    /// `user@REALM` for the users `list` gives in each domain of the world (each its own realm).
    static func qualified(_ list: (Hosts.SimulatedHost, World, String?) -> [String], _ host: Hosts.SimulatedHost, world: World) -> [String] {
        world.directory.domainOrder.flatMap { d in
            list(host, world, d).map { "\($0)@\(RealmModel.realmName(ofDomain: d))" }
        }
    }

    /// Users of the realm's domain who cannot be delegated (rule A4: sensitive, or in Protected Users
    /// through nested groups), as `host`'s logon DC sees them: their CredSSP sign-ons keep no credentials.
    public static func nonDelegableUsers(_ host: Hosts.SimulatedHost, world: World, domain: String? = nil) -> [String] {
        let dir = world.directory
        guard let domain = domain ?? dir.domainOrder.first, let replica = replica(dir, domain, host) else { return [] }
        return replica.users.values.filter {
            dir.cannotBeDelegated(PrincipalRef(normalizedDomain: domain, name: $0.key), on: host.logonDC)
        }.map(PrincipalNames.user).sorted()
    }

    /// Users of the realm's domain allowed to migrate on `host` (rule P1): members of its local
    /// Administrators or Hyper-V Administrators, through domain groups as its logon DC sees them.
    public static func permittedUsers(_ host: Hosts.SimulatedHost, world: World, domain: String? = nil) -> [String] {
        let dir = world.directory
        guard let domain = domain ?? dir.domainOrder.first, let replica = replica(dir, domain, host) else { return [] }
        return replica.users.values.filter {
            world.mayMigrate(PrincipalRef(normalizedDomain: domain, name: $0.key), on: host)
        }.map(PrincipalNames.user).sorted()
    }

    /// `domain` as `host` sees it: its logon DC's replica for its own domain, the domain's
    /// primary controller's for another (that domain's accounts through a trust).
    static func replica(_ dir: Directory, _ domain: String, _ host: Hosts.SimulatedHost) -> DirectoryReplica? {
        host.domain == domain ? dir.replica(of: domain, on: host.logonDC)
            : dir.replica(of: domain, on: dir.domain(domain)?.primaryController)
    }

    /// Rule N1 on loopback: each listed subnet becomes the `/32`s of the loopback addresses of
    /// the hosts whose simulated addresses it contains.
    static func loopbackNetworks(_ subnets: [IPv4Subnet], world: World, layout: HostLayout) -> [IPv4Subnet] {
        var out: [IPv4Subnet] = []
        for subnet in subnets {
            for h in world.allHosts where h.addresses.contains(where: subnet.contains) {
                if let e = layout.entry(h.name), let s = IPv4Subnet(e.address + "/32"), !out.contains(s) { out.append(s) }
            }
        }
        return out
    }
}
