import Directory
import Foundation
import Hosts
import MigrationRules
import TestRealm

/// Where each simulated host lives on this machine: a loopback address and a directory with its
/// keytabs, ccaches, VM files and daemon configuration.
///
/// Addresses are deterministic from the order hosts were added: the first host gets 127.0.0.11,
/// the second 127.0.0.12, and so on (TestServer01 → .11, TestServer02 → .12, a workstation
/// added third → .13).
public struct HostLayout: Sendable {
    /// One host's paths.
    public struct Entry: Sendable, Hashable, Codable {
        public var name: String
        /// Lower-cased short name.
        public var key: String
        public var fqdn: String
        public var address: String
        public var directory: String
        public var keytab: String
        public var clientKeytab: String
        /// Users' ccaches (`<user>.cc`): a console, Remote Desktop or CredSSP sign-on is a `kinit` here.
        public var ccacheDirectory: String
        /// The host's own ccache (its computer account's TGT, rule A3).
        public var hostCCache: String
        public var vmDirectory: String
        public var configuration: String
        /// False for hosts of other domains: they have no principals in the (one-domain) realm.
        public var inRealm: Bool
    }

    public let root: String
    /// Entries in the order hosts were added.
    public let entries: [Entry]

    public init(world: World, root: String) {
        self.root = root
        let realmDomain = world.directory.domainOrder.first
        entries = world.allHosts.enumerated().map { i, h in
            let dir = root + "/" + h.key
            return Entry(name: h.name, key: h.key, fqdn: PrincipalNames.fqdn(h), address: Self.loopbackAddress(index: i),
                         directory: dir, keytab: dir + "/krb5.keytab", clientKeytab: dir + "/client.keytab",
                         ccacheDirectory: dir + "/ccaches", hostCCache: dir + "/host.ccache",
                         vmDirectory: dir + "/vms", configuration: dir + "/host.json",
                         inRealm: h.domain == realmDomain)
        }
    }

    /// 127.0.0.11 for the first host, 127.0.0.12 for the second, …
    public static func loopbackAddress(index: Int) -> String { "127.0.0.\(11 + index)" }

    /// The entry of `name` (short name or FQDN, any case).
    public func entry(_ name: String) -> Entry? {
        let key = ServiceTarget.shortKey(name)
        return entries.first { $0.key == key }
    }

    /// `FILE:` name of `user`'s ccache on `host`.
    public func userCCache(host: String, user: String) -> String? {
        entry(host).map { "FILE:\($0.ccacheDirectory)/\(user.lowercased()).cc" }
    }

    /// Creates the directories and exports each host's keytabs (once; keys are not changed).
    /// Run after ``RealmProvisioner/provision(_:)`` created the principals.
    public func prepare(realm: TestRealm) async throws {
        let fm = FileManager.default
        for e in entries {
            for d in [e.directory, e.ccacheDirectory, e.vmDirectory] {
                try fm.createDirectory(atPath: d, withIntermediateDirectories: true,
                                       attributes: [.posixPermissions: 0o700])
            }
            guard e.inRealm else { continue }
            if !fm.fileExists(atPath: e.keytab) {
                _ = try await realm.exportKeytab(["host/\(e.fqdn)", "Microsoft Virtual System Migration Service/\(e.fqdn)",
                                                  "cifs/\(e.fqdn)"], to: e.keytab)
            }
            if !fm.fileExists(atPath: e.clientKeytab) {
                _ = try await realm.exportKeytab(["host/\(e.fqdn)"], to: e.clientKeytab)
            }
        }
    }

    /// Writes every host's VM files (`<vm>.vmcx`, one per VM the model puts there; others removed)
    /// and its `host.json`.
    public func write(world: World) throws {
        let fm = FileManager.default
        for h in world.allHosts {
            guard let e = entry(h.name) else { continue }
            try fm.createDirectory(atPath: e.vmDirectory, withIntermediateDirectories: true)
            let want = Set(h.virtualMachines.values.map { $0.name + ".vmcx" })
            for f in (try? fm.contentsOfDirectory(atPath: e.vmDirectory)) ?? [] where !want.contains(f) {
                try fm.removeItem(atPath: e.vmDirectory + "/" + f)
            }
            for vm in h.virtualMachines.values.sorted(by: { $0.name < $1.name }) where !fm.fileExists(atPath: e.vmDirectory + "/" + vm.name + ".vmcx") {
                try Data("virtual machine \(vm.name)\n".utf8).write(to: URL(fileURLWithPath: e.vmDirectory + "/" + vm.name + ".vmcx"))
            }
            if let config = HostConfiguration.make(for: h, world: world, layout: self) {
                try config.jsonData().write(to: URL(fileURLWithPath: e.configuration), options: .atomic)
            }
        }
    }
}
