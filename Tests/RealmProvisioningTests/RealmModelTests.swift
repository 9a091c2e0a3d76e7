import Directory
import Foundation
import Hosts
import MigrationRules
import MigrationService
import RealmProvisioning
import Testing

@Suite("What the KDC must hold for a world (no KDC)")
struct RealmModelTests {
    @Test("users, hosts' three principals, non-forwardable users, protocol transition and delegation lists")
    func desiredState() throws {
        var world = World.contosoLab()
        let model = RealmModel.desired(for: world)
        #expect(model.realm == "CONTOSO.COM")
        #expect(model.domains == ["contoso.com"])
        #expect(model.principals["bob"]?.forwardable == true)
        #expect(model.principals["carol"]?.forwardable == false)   // sensitive
        #expect(model.principals["dave"]?.forwardable == false)    // Protected Users
        #expect(model.principals["erin"] == nil)                   // fabrikam: another realm
        for p in ["host/testserver01.contoso.com", "cifs/testserver01.contoso.com",
                  "Microsoft Virtual System Migration Service/testserver01.contoso.com"] {
            #expect(model.principals[p] != nil, "\(p)")
        }
        #expect(model.principals["host/fabserver01.fabrikam.com"] == nil)
        #expect(model.delegation.isEmpty)

        try world.apply(.addDelegation(computer: "TestServer01", services: ["cifs/TestServer02.contoso.com"], by: "alice", dc: "DC01"))
        try world.apply(.setDelegationKind(computer: "TestServer01", kind: .constrainedAnyProtocol, by: "alice", dc: "DC01"))
        // The KDC serves the DC's directory: the change is there at once (the host's old ticket, A3's
        // other half, is the source daemon's: HostTicketDelegation).
        let after = RealmModel.desired(for: world)
        #expect(after.delegation["host/testserver01.contoso.com"] == ["cifs/testserver02.contoso.com@CONTOSO.COM"])
        #expect(after.principals["host/testserver01.contoso.com"]?.okToAuthAsDelegate == true)
        #expect(after.principals["host/testserver02.contoso.com"]?.okToAuthAsDelegate == false)
    }
}

@Suite("Host configurations and sign-on files for CredSSP sources (no KDC)")
struct CredSSPHostConfigurationTests {
    static func layout(_ world: World) -> HostLayout {
        HostLayout(world: world, root: FileManager.default.temporaryDirectory.path + "/rcred-\(UUID().uuidString)")
    }

    @Test("authentication type, non-delegable users (A4) and Credential Guard (A7) come from the model")
    func credSSPSettings() throws {
        var world = World.contosoLab()
        let layout = Self.layout(world)
        let host = try #require(world.host("TestServer01"))
        var config = try #require(HostConfiguration.make(for: host, world: world, layout: layout))
        #expect(config.authenticationType == host.migration.authenticationType)
        // carol is sensitive, dave in Protected Users (as TestServer01's logon DC sees them).
        #expect(config.protectedUsers == ["carol@CONTOSO.COM", "dave@CONTOSO.COM"])
        #expect(config.isProtected("dave@CONTOSO.COM") && !config.isProtected("bob@CONTOSO.COM"))
        #expect(config.credentialGuard == false)

        try world.apply(.setAuthenticationType(host: "TestServer01", type: .kerberos))
        try world.apply(.setCredentialGuard(host: "TestServer01", enabled: true))
        let changed = try #require(world.host("TestServer01"))
        config = try #require(HostConfiguration.make(for: changed, world: world, layout: layout))
        #expect(config.authenticationType == .kerberos)
        #expect(config.credentialGuard)
        // The daemon reads what the runner writes (JSON without the key would mean CredSSP).
        let decoded = try JSONDecoder().decode(HostConfiguration.self, from: JSONEncoder().encode(config))
        #expect(decoded.authenticationType == .kerberos && decoded.credentialGuard && decoded.protectedUsers == config.protectedUsers)
    }

    @Test("a sign-on's password file is the password and a newline, mode 0600, replaced on the next sign-on")
    func passwordFile() throws {
        let layout = Self.layout(.contosoLab())
        let e = try #require(layout.entry("TestServer02"))
        try FileManager.default.createDirectory(atPath: e.ccacheDirectory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: layout.root) }
        try layout.writePassword("old", host: "TestServer02", user: "Alice")
        let path = try #require(try layout.writePassword("s3cret", host: "testserver02", user: "alice"))
        #expect(path == e.ccacheDirectory + "/alice.password")
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "s3cret\n")
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
        #expect(mode == 0o600)
        #expect(try layout.writePassword("x", host: "NoSuchHost", user: "alice") == nil)
    }
}
