import Directory
import Foundation
import Hosts
import MigrationRules
import MigrationService
import TestRealm

/// Where each simulated host lives on this machine: a loopback address, daemon ports, and a
/// directory with its keytabs, ccaches, VM files and daemon configuration.
///
/// Addresses are deterministic from the order hosts were added: the first host gets 127.0.0.11,
/// the second 127.0.0.12, and so on (TestServer01 → .11, TestServer02 → .12, a workstation
/// added third → .13). Ports are free ports on that address, chosen once.
package struct HostLayout: Sendable {
    /// One host's paths.
    package struct Entry: Sendable, Hashable, Codable {
        package var name: String
        /// Lower-cased short name.
        package var key: String
        package var fqdn: String
        package var address: String
        package var migrationPort: Int
        package var managementPort: Int
        package var directory: String
        package var keytab: String
        package var clientKeytab: String
        /// Users' ccaches (`<user>.cc`): a console, Remote Desktop or CredSSP sign-on is a `kinit` here.
        package var ccacheDirectory: String
        /// The host's own ccache (its computer account's TGT, rule A3), where the daemon keeps it.
        package var hostCCache: String
        package var vmDirectory: String
        package var configuration: String
        /// False for hosts of other domains than the world's first (their principals are in their
        /// own domain's realm, when the runner starts one).
        package var inRealm: Bool
        /// The host's domain (lower-cased DNS name): its principals live in that domain's realm.
        package var domain: String = ""
        /// Its own krb5.conf when the world has several realms (its realm, the realms its domain
        /// trusts or is trusted by, `[capaths]`) or a domain has several DCs (its realm's KDC is its
        /// logon DC's); nil: the realm's krb5.conf.
        package var krb5Config: String? = nil
        /// A loopback address of this host where its daemon never listens (127.0.1.x for 127.0.0.x):
        /// what a move naming one of its simulated addresses outside its migration networks reaches.
        package var unlistedAddress: String = ""
    }

    package let root: String
    /// Entries in the order hosts were added.
    package let entries: [Entry]
    /// Size of each VM's state file (random bytes), unless ``vmFileSizes`` names it.
    package var vmFileSize: Int
    /// Sizes of particular VMs' state files, by lower-cased name.
    package var vmFileSizes: [String: Int]

    package init(world: World, root: String, vmFileSize: Int = 64 * 1024, vmFileSizes: [String: Int] = [:]) {
        self.root = root
        self.vmFileSize = vmFileSize
        self.vmFileSizes = vmFileSizes
        let realmDomain = world.directory.domainOrder.first
        entries = world.allHosts.enumerated().map { i, h in
            let dir = root + "/" + h.key
            let address = Self.loopbackAddress(index: i)
            let fqdn = PrincipalNames.fqdn(h)
            return Entry(name: h.name, key: h.key, fqdn: fqdn, address: address,
                         migrationPort: FreePort.find(on: address), managementPort: FreePort.find(on: address),
                         directory: dir, keytab: dir + "/krb5.keytab", clientKeytab: dir + "/client.keytab",
                         ccacheDirectory: dir + "/ccaches", hostCCache: dir + "/host-\(fqdn).ccache",
                         vmDirectory: dir + "/vms", configuration: dir + "/host.json",
                         inRealm: h.domain == realmDomain, domain: h.domain,
                         krb5Config: Self.needsOwnKrb5Config(world) ? dir + "/krb5.conf" : nil,
                         unlistedAddress: Self.unlistedAddress(index: i))
        }
    }

    /// Whether hosts need their own krb5.conf: several realms (trusts), or a domain with several
    /// DCs (each host's KDC is its logon DC's).
    package static func needsOwnKrb5Config(_ world: World) -> Bool {
        let domains = world.directory.domainOrder
        return domains.count > 1 || domains.contains { (world.directory.domain($0)?.controllerOrder.count ?? 0) > 1 }
    }

    /// 127.0.0.11 for the first host, 127.0.0.12 for the second, …
    package static func loopbackAddress(index: Int) -> String { "127.0.0.\(11 + index)" }

    /// 127.0.1.11 for the first host, …: addresses nothing of the run listens on.
    package static func unlistedAddress(index: Int) -> String { "127.0.1.\(11 + index)" }

    /// The entry of `name` (short name or FQDN, any case).
    package func entry(_ name: String) -> Entry? {
        let key = ServiceTarget.shortKey(name)
        return entries.first { $0.key == key }
    }

    /// `FILE:` name of `user`'s ccache on `host`.
    package func userCCache(host: String, user: String) -> String? {
        entry(host).map { "FILE:\($0.ccacheDirectory)/\(user.lowercased()).cc" }
    }

    /// Path of the file holding `user`'s password on `host` (console, Remote Desktop or CredSSP
    /// sign-ons there: what `migauth migrate --password-file` reads), next to the user's ccache.
    package func passwordFile(host: String, user: String) -> String? {
        entry(host).map { "\($0.ccacheDirectory)/\(user.lowercased()).password" }
    }

    /// Writes `password` to ``passwordFile(host:user:)`` with mode 0600 (created so, never wider).
    @discardableResult
    package func writePassword(_ password: String, host: String, user: String) throws -> String? {
        guard let path = passwordFile(host: host, user: user) else { return nil }
        try? FileManager.default.removeItem(atPath: path)
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path]) }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        try handle.write(contentsOf: Data((password + "\n").utf8))
        try handle.close()
        return path
    }

    /// Creates the directories and exports each host's keytabs (once; keys are not changed).
    /// Run after ``RealmProvisioner/provision(_:)`` created the principals.
    /// `domain`: export the keytabs of that domain's hosts (nil: the world's first domain's).
    package func prepare(realm: TestRealm, domain: String? = nil) async throws {
        let fm = FileManager.default
        for e in entries {
            for d in [e.directory, e.ccacheDirectory, e.vmDirectory] {
                try fm.createDirectory(atPath: d, withIntermediateDirectories: true,
                                       attributes: [.posixPermissions: 0o700])
            }
            guard domain.map({ $0 == e.domain }) ?? e.inRealm else { continue }
            if !fm.fileExists(atPath: e.keytab) {
                _ = try await realm.exportKeytab(["host/\(e.fqdn)", "Microsoft Virtual System Migration Service/\(e.fqdn)",
                                                  "cifs/\(e.fqdn)"], to: e.keytab)
            }
            if !fm.fileExists(atPath: e.clientKeytab) {
                _ = try await realm.exportKeytab(["host/\(e.fqdn)"], to: e.clientKeytab)
            }
        }
    }

    /// Makes every host's VM files match the model (`<vm>.vhdx` per VM there; others removed) and
    /// writes its `host.json`. Returns the hosts whose configuration changed.
    @discardableResult
    package func write(world: World) throws -> [String] {
        let fm = FileManager.default
        var changed: [String] = []
        for h in world.allHosts {
            guard let e = entry(h.name) else { continue }
            try fm.createDirectory(atPath: e.vmDirectory, withIntermediateDirectories: true)
            let ext = "." + VMStore.fileExtension
            let want = Set(h.virtualMachines.values.map { $0.name + ext })
            for f in (try? fm.contentsOfDirectory(atPath: e.vmDirectory)) ?? [] where f.hasSuffix(ext) && !want.contains(f) {
                try fm.removeItem(atPath: e.vmDirectory + "/" + f)
            }
            for vm in h.virtualMachines.values where !fm.fileExists(atPath: e.vmDirectory + "/" + vm.name + ext) {
                let random = FileHandle(forReadingAtPath: "/dev/urandom")
                defer { try? random?.close() }
                let size = vmFileSizes[vm.name.lowercased()] ?? vmFileSize
                let bytes = (try? random?.read(upToCount: size)) ?? Data(count: size)
                try bytes.write(to: URL(fileURLWithPath: e.vmDirectory + "/" + vm.name + ext))
            }
            guard let config = HostConfiguration.make(for: h, world: world, layout: self) else { continue }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let data = try encoder.encode(config)
            if fm.contents(atPath: e.configuration) != data {
                try data.write(to: URL(fileURLWithPath: e.configuration), options: .atomic)
                changed.append(e.key)
            }
        }
        return changed
    }
}

/// A TCP port on a loopback address that is free now (bound and released; the daemon binds it
/// next) and lies *below* the kernel's ephemeral range: no other socket's bind to port 0 — tests
/// and daemons on the same loopback addresses do that concurrently — can take it in between.
enum FreePort {
    static func find(on address: String) -> Int {
        let ephemeralLow = ephemeralRangeStart()
        let low = max(1024, ephemeralLow - 16_000)
        if low < ephemeralLow {
            var generator = SystemRandomNumberGenerator()
            for _ in 0..<500 {
                let port = Int.random(in: low..<ephemeralLow, using: &generator)
                if bindable(address, port) == port { return port }
            }
        }
        return bindable(address, 0)  // odd port ranges: an ephemeral port, as before
    }

    /// The first port of `net.ipv4.ip_local_port_range` (32768 when unreadable).
    static func ephemeralRangeStart() -> Int {
        let text = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? ""
        return text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first.flatMap { Int($0) } ?? 32768
    }

    /// Binds `port` (0: any) on `address` and releases it; the port bound, or 0.
    static func bindable(_ address: String, _ port: Int) -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        guard inet_pton(AF_INET, address, &addr.sin_addr) == 1 else { return 0 }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { return 0 }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        return named == 0 ? Int(UInt16(bigEndian: addr.sin_port)) : 0
    }
}
