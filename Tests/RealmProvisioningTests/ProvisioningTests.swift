import Foundation
import Hosts
import MigrationRules
import MigrationService
import RealmProvisioning
import TestRealm
import Testing

/// A provisioned contoso lab on a real LDAP-backed KDC, torn down by `close()`.
struct ProvisionedLab {
    let realm: TestRealm
    let provisioner: RealmProvisioner
    let layout: HostLayout
    var world: World

    static let migration = "Microsoft Virtual System Migration Service"

    static func start(_ world: World = .contosoLab()) async throws -> ProvisionedLab {
        let realm = try await RealmProvisioner.startRealm(for: world)
        let provisioner = RealmProvisioner(realm: realm)
        try await provisioner.provision(world)
        let layout = HostLayout(world: world, root: realm.directory + "/hosts")
        try await layout.prepare(realm: realm)
        try layout.write(world: world)
        return ProvisionedLab(realm: realm, provisioner: provisioner, layout: layout, world: world)
    }

    @discardableResult
    mutating func apply(_ step: Step) async throws -> [ProvisioningChange] {
        try world.apply(step)
        return try await provisioner.provision(world)
    }

    /// S4U2Self for `user` then S4U2Proxy to `target` as `host/<source>` (fresh ccache per check).
    func s4u2proxy(from source: String, user: String, to target: String) async throws -> CommandResult {
        let e = try #require(layout.entry(source))
        let cc = try await realm.kinit("host/\(e.fqdn)", keytab: e.clientKeytab)
        return try await realm.run("/usr/bin/kvno", ["-c", cc, "-k", e.keytab, "-U", user, "-P", target], check: false)
    }

    func close() async { await realm.shutdown() }

    /// Runs `body` with a fresh lab and always shuts it down (its directory is removed).
    static func with(_ body: (inout ProvisionedLab) async throws -> Void) async throws {
        var lab = try await start()
        do { try await body(&lab) } catch {
            await lab.close()
            throw error
        }
        await lab.close()
    }
}

@Suite("Provisioning a real KDC from the simulated world")
struct ProvisioningTests {
    let spn02 = "\(ProvisionedLab.migration)/testserver02.contoso.com"
    let spn03 = "\(ProvisionedLab.migration)/testserver03.contoso.com"

    @Test("delegation in the model allows S4U2Proxy to the listed SPN only; the KDC holds what DC01's directory holds")
    func delegationFollowsTheModel() async throws {
        try await ProvisionedLab.with { lab in
            let host01 = "host/testserver01.contoso.com"
            #expect(try await lab.realm.allowedToDelegate(host01).isEmpty)
            #expect(!(try await lab.s4u2proxy(from: "TestServer01", user: "bob", to: spn02)).succeeded)

            // Written on DC01, the DC this KDC serves: there at once. (Rule A3's ticket half — the host's
            // old ticket keeping the old answer — is the source daemon's, `HostTicketDelegation`.)
            try await lab.apply(.addDelegation(computer: "TestServer01", services: ["\(ProvisionedLab.migration)/TestServer02"], by: "alice", dc: "DC01"))
            let changes = try await lab.apply(.setDelegationKind(computer: "TestServer01", kind: .constrainedAnyProtocol, by: "alice", dc: "DC01"))
            #expect(changes.contains(.modified(host01, "+allow_forwardable +ok_to_auth_as_delegate")), "\(changes)")
            #expect(try await lab.realm.allowedToDelegate(host01) == ["\(spn02)@CONTOSO.COM"])
            let allowed = try await lab.s4u2proxy(from: "TestServer01", user: "bob", to: spn02)
            #expect(allowed.succeeded, "\(allowed)")
            let unlisted = try await lab.s4u2proxy(from: "TestServer01", user: "bob", to: spn03)
            #expect(!unlisted.succeeded)
            #expect(unlisted.standardError.contains("KDC can't fulfill requested option"))

            // Idempotent: the same world again changes nothing.
            #expect(try await lab.provisioner.provision(lab.world).isEmpty)

            try await lab.apply(.removeDelegation(computer: "TestServer01", services: ["\(ProvisionedLab.migration)/TestServer02"], by: "alice", dc: "DC01"))
            #expect(try await lab.realm.allowedToDelegate(host01).isEmpty)
            let refused = try await lab.s4u2proxy(from: "TestServer01", user: "bob", to: spn02)
            #expect(!refused.succeeded)
        }
    }

    @Test("a change on DC02 reaches a host whose logon DC is DC01 only after replication")
    func replicationToTheLogonDC() async throws {
        try await ProvisionedLab.with { lab in
            try await lab.apply(.purgeTickets(host: "TestServer01"))
            try await lab.apply(.addDelegation(computer: "TestServer01", services: ["\(ProvisionedLab.migration)/TestServer02"], by: "alice", dc: "DC02"))
            #expect(try await lab.realm.allowedToDelegate("host/testserver01.contoso.com").isEmpty)
            try await lab.apply(.replicateAll)
            #expect(try await lab.realm.allowedToDelegate("host/testserver01.contoso.com") == ["\(spn02)@CONTOSO.COM"])
        }
    }

    @Test("sensitive and Protected Users accounts get non-forwardable tickets; others forwardable")
    func nonDelegableUsers() async throws {
        try await ProvisionedLab.with { lab in
            func flags(_ user: String) async throws -> String {
                let password = try #require(await lab.provisioner.password(of: user))
                let cc = try await lab.realm.kinit(user, password: password)
                return try await lab.realm.ticketFlags(ccache: cc)
            }
            #expect(try await flags("bob").contains("F"))
            #expect(try await !flags("carol").contains("F"))
            #expect(try await !flags("dave").contains("F"))
            // Marking bob sensitive in the model (and replicating) makes his next ticket non-forwardable.
            try await lab.apply(.setSensitive(user: "bob", sensitive: true, dc: "DC01"))
            try await lab.apply(.replicateAll)
            #expect(try await !flags("bob").contains("F"))
        }
    }

    @Test("host layout: loopback addresses by order, keytabs, VM files, configuration from the settings")
    func hostLayout() async throws {
        try await ProvisionedLab.with { lab in
            let names = lab.layout.entries.map { "\($0.name)=\($0.address)" }
            #expect(names == ["TestServer01=127.0.0.11", "TestServer02=127.0.0.12", "TestServer03=127.0.0.13",
                              "ADMIN-WS01=127.0.0.14", "FabServer01=127.0.0.15"])
            let e = try #require(lab.layout.entry("testserver01"))
            let keys = try await lab.realm.run("/usr/bin/klist", ["-k", e.keytab]).standardOutput
            #expect(keys.contains("Microsoft Virtual System Migration Service/testserver01.contoso.com@CONTOSO.COM"))
            #expect(keys.contains("cifs/testserver01.contoso.com@CONTOSO.COM"))
            _ = try await lab.realm.kinit("host/\(e.fqdn)", keytab: e.clientKeytab)
            #expect(FileManager.default.fileExists(atPath: e.vmDirectory + "/VM1.vhdx"))

            let data = try Data(contentsOf: URL(fileURLWithPath: e.configuration))
            let config = try JSONDecoder().decode(HostConfiguration.self, from: data)
            #expect(config.address == "127.0.0.11")
            #expect(config.migrationEnabled)
            #expect(config.maximumMigrations == 2)
            // Hyper-V Operators (bob, dave) and Domain Admins (Administrator, alice) in local groups.
            #expect(config.allowedUsers == ["Administrator@CONTOSO.COM", "alice@CONTOSO.COM", "bob@CONTOSO.COM", "dave@CONTOSO.COM"])
            // 192.168.10.0/24 holds TestServer01-03's and FabServer01's simulated addresses.
            #expect(config.incomingNetworks.map(\.description) == ["127.0.0.11/32", "127.0.0.12/32", "127.0.0.13/32", "127.0.0.15/32"])
            #expect(config.migrationPort == e.migrationPort && config.migrationPort > 0)
            #expect(config.hosts["testserver02.contoso.com"] == "127.0.0.12")
        }
    }
}
