import Foundation
import GSS
import Hosts
@testable import MigrationService
import TestRealm

/// Two (or three) hosts on loopback addresses against the shared LDAP realm (DELEGATION.TEST, which
/// enforces `krbAllowedToDelegateTo`), with unique names per test.
struct ServiceLab {
    static let sourceAddress = "127.0.0.11"
    static let destinationAddress = "127.0.0.12"
    static let workstationAddress = "127.0.0.13"

    let realm: TestRealm
    let suffix: String
    let directory: String
    let sourceFQDN: String
    let destinationFQDN: String
    let user: String
    let userPassword = "Secret-1"
    let destinationKeytab: String
    let sourceKeytab: String
    var realmName: String { realm.name }
    var userPrincipal: String { "\(user)@\(realm.name)" }
    var sourceVMs: VMStore { VMStore(directory: directory + "/source-vms") }
    var destinationVMs: VMStore { VMStore(directory: directory + "/destination-vms") }

    /// A lab on the shared LDAP realm, or on `realm` (say a private one a test may break).
    static func make(userAttributes: PrincipalAttributes = .none, realm: TestRealm? = nil) async throws -> ServiceLab {
        let realm = if let realm { realm } else { try await TestRealm.sharedLDAP() }
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let source = "src-\(suffix).delegation.test"
        let destination = "dst-\(suffix).delegation.test"
        let user = "mover-\(suffix)"
        try await realm.addPrincipal(user, password: "Secret-1", attributes: userAttributes)
        let migrationSPN = MigrationServiceNames.migrationPrincipal(fqdn: destination, realm: nil)
        try await realm.addPrincipal(migrationSPN)
        let hostSPN = MigrationServiceNames.hostPrincipal(fqdn: source, realm: nil)
        try await realm.addPrincipal(hostSPN)
        let directory = NSTemporaryDirectory() + "svc-\(suffix)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return ServiceLab(realm: realm, suffix: suffix, directory: directory, sourceFQDN: source,
                          destinationFQDN: destination, user: user,
                          destinationKeytab: try await realm.exportKeytab([migrationSPN], to: directory + "/destination.keytab"),
                          sourceKeytab: try await realm.exportKeytab([hostSPN], to: directory + "/source.keytab"))
    }

    func destinationConfiguration(allowed: [String]? = nil, networks: [String] = ["127.0.0.12/32"],
                                  useAnyNetwork: Bool = false, maximumMigrations: Int = 2) -> DestinationConfiguration {
        DestinationConfiguration(hostName: "TestServer02", fqdn: destinationFQDN, realm: realm.name,
                                 keytab: destinationKeytab, vmDirectory: destinationVMs.directory,
                                 allowedUsers: allowed ?? [user], incomingNetworks: networks.compactMap(IPv4Subnet.init),
                                 useAnyNetwork: useAnyNetwork, maximumMigrations: maximumMigrations)
    }

    /// A started destination on 127.0.0.12 (ephemeral port).
    func startDestination(_ configuration: DestinationConfiguration? = nil,
                          address: String = destinationAddress) async throws -> MigrationDestination {
        let destination = MigrationDestination(configuration: configuration ?? destinationConfiguration())
        try await destination.start(on: ServiceEndpoint(address: address, port: 0))
        return destination
    }

    func target(_ destination: MigrationDestination) throws -> MigrationTarget {
        MigrationTarget(fqdn: destinationFQDN, endpoint: try requireEndpoint(destination), realm: realm.name)
    }

    var source: MigrationSource {
        get throws { try MigrationSource(localAddress: Self.sourceAddress, vmDirectory: sourceVMs.directory) }
    }

    /// The user's own credential from a fresh ccache (kinit with the password).
    func userCredential(forwardable: Bool = true) async throws -> GSSCredential {
        let ccache = try await realm.kinit(user, password: userPassword, forwardable: forwardable)
        return try GSSCredential.acquire(store: GSSCredentialStore(ccache: ccache))
    }

    /// A VM of `size` bytes: half random, half repeating (so compression has something to do).
    @discardableResult
    func createVM(_ name: String, size: Int = 3 * 1024 * 1024 + 12345) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: size)
        var g = SystemRandomNumberGenerator()
        for i in 0..<size where (i / 65536) % 2 == 0 { bytes[i] = UInt8.random(in: 0...255, using: &g) }
        for i in 0..<size where (i / 65536) % 2 == 1 { bytes[i] = UInt8(i % 7) }
        try sourceVMs.create(name, contents: bytes)
        return bytes
    }

    func contents(_ store: VMStore, _ vm: String) -> [UInt8]? {
        FileManager.default.contents(atPath: store.path(of: vm)).map { [UInt8]($0) }
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: directory)
    }
}

func requireEndpoint(_ destination: MigrationDestination) throws -> ServiceEndpoint {
    guard let e = destination.endpoint else { throw LabError.notStarted }
    return e
}

enum LabError: Error { case notStarted }

/// Open file descriptors of this process.
func openFileDescriptors() -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
}
