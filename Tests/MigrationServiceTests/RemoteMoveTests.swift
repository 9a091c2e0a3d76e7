import Foundation
import GSS
import Hosts
import MigrationRules
@testable import MigrationService
import Testing
import TestRealm
import WindowsStatus

/// A user on a workstation asks the source's management service to move a VM; the source uses
/// the user's proxy credential for S4U2Proxy to the destination (rule A2, "Kerberos only").
@Suite("Remote moves through the management channel")
struct RemoteMoveTests {
    struct Setup {
        let lab: ServiceLab
        let source: HostDaemon
        let destination: MigrationDestination
        let client: ManagementClient

        var via: ManagementClient.Source {
            get throws {
                ManagementClient.Source(fqdn: lab.sourceFQDN, endpoint: try #require(source.management.endpoint),
                                        realm: lab.realmName)
            }
        }

        func stop() async {
            await source.stop()
            await destination.stop()
        }
    }

    static func setUp(userAttributes: PrincipalAttributes = .none, delegate: Bool) async throws -> Setup {
        let lab = try await ServiceLab.make(userAttributes: userAttributes)
        if delegate {
            try await lab.realm.setAllowedToDelegate(
                "host/\(lab.sourceFQDN)",
                targets: [MigrationServiceNames.migrationPrincipal(fqdn: lab.destinationFQDN, realm: lab.realmName)])
        }
        let destination = try await lab.startDestination()
        let configuration = HostConfiguration(
            name: "TestServer01", fqdn: lab.sourceFQDN, address: ServiceLab.sourceAddress, realm: lab.realmName,
            keytab: lab.sourceKeytab, ccacheDirectory: lab.directory, migrationEnabled: true, migrationPort: 0,
            managementPort: 0, allowedUsers: [lab.user], incomingNetworks: [IPv4Subnet("127.0.0.11/32")!],
            vmDirectory: lab.sourceVMs.directory,
            hosts: [lab.destinationFQDN: ServiceLab.destinationAddress], authenticationType: .kerberos)
        let source = HostDaemon(configuration: configuration)
        try await source.start()
        return Setup(lab: lab, source: source, destination: destination,
                     client: try ManagementClient(localAddress: ServiceLab.workstationAddress))
    }

    @Test("A2: with krbAllowedToDelegateTo listing the migration SPN the move works and the destination sees the user")
    func delegated() async throws {
        let s = try await Self.setUp(delegate: true)
        defer { s.lab.remove() }
        let bytes = try s.lab.createVM("vm-remote")
        let endpoint = try requireEndpoint(s.destination)
        let report = try await s.client.requestMove(vm: "vm-remote", destination: s.lab.destinationFQDN, endpoint: endpoint,
                                                    via: s.via, credential: s.lab.userCredential())
        let events = await s.destination.events()
        #expect(s.source.readyLine.hasPrefix("READY migration=127.0.0.11:"))
        await s.stop()
        #expect(report.destinationPrincipal == s.lab.userPrincipal)
        #expect(events.contains(.started(vm: "vm-remote", user: s.lab.userPrincipal)))
        let arrived = s.lab.contents(s.lab.destinationVMs, "vm-remote") == bytes
        #expect(arrived)
        #expect(!s.lab.sourceVMs.contains("vm-remote"))
    }

    @Test("A2: the source resolves the destination through its hosts table when no endpoint is given")
    func hostsTable() async throws {
        let s = try await Self.setUp(delegate: true)
        defer { s.lab.remove() }
        try s.lab.createVM("vm-hosts", size: 100_000)
        let port = try requireEndpoint(s.destination).port
        // Only the port: the source resolves the FQDN through its hosts table.
        let report = try await s.client.requestMove(
            vm: "vm-hosts", destination: s.lab.destinationFQDN, endpoint: nil, port: port, via: s.via,
            credential: s.lab.userCredential(), performance: .tcpIP)
        await s.stop()
        #expect(report.bytes == 100_000)
    }

    @Test("A2: without the delegation entry the source fails with the seed's two lines naming the destination")
    func notDelegated() async throws {
        let s = try await Self.setUp(delegate: false)
        defer { s.lab.remove() }
        try s.lab.createVM("vm-nodeleg")
        let endpoint = try requireEndpoint(s.destination)
        let error = await #expect(throws: MigrationServiceError.self) {
            try await s.client.requestMove(vm: "vm-nodeleg", destination: s.lab.destinationFQDN, endpoint: endpoint,
                                           via: s.via, credential: s.lab.userCredential())
        }
        await s.stop()
        #expect(error?.status == .noCredentials)
        #expect(error?.stage == .source)
        #expect(error?.message == """
            Virtual machine migration operation failed at migration Source.
            Failed to establish a connection with host \(s.lab.destinationFQDN): No credentials are available in the security package (0x8009030E).
            """)
        #expect(s.lab.sourceVMs.contains("vm-nodeleg"))
        #expect(s.lab.destinationVMs.list().isEmpty)
    }

    @Test("A4: a user whose tickets are not forwardable cannot be delegated → 0x8009030E")
    func notForwardable() async throws {
        let s = try await Self.setUp(userAttributes: PrincipalAttributes(forwardable: false), delegate: true)
        defer { s.lab.remove() }
        try s.lab.createVM("vm-a4")
        let endpoint = try requireEndpoint(s.destination)
        let error = await #expect(throws: MigrationServiceError.self) {
            try await s.client.requestMove(vm: "vm-a4", destination: s.lab.destinationFQDN, endpoint: endpoint,
                                           via: s.via, credential: s.lab.userCredential())
        }
        await s.stop()
        #expect(error?.status == .noCredentials)
        #expect(error?.message == MigrationMessages.connectionFailure(destination: s.lab.destinationFQDN, status: .noCredentials))
        #expect(s.lab.sourceVMs.contains("vm-a4"))
    }

    @Test("P1 at the source: a user not allowed on the source is refused before anything moves")
    func deniedAtSource() async throws {
        let s = try await Self.setUp(delegate: true)
        defer { s.lab.remove() }
        try s.lab.createVM("vm-p1s")
        var c = s.source.configuration
        c.allowedUsers = ["someone-else"]
        try await s.source.reload(c)
        let endpoint = try requireEndpoint(s.destination)
        let error = await #expect(throws: MigrationServiceError.self) {
            try await s.client.requestMove(vm: "vm-p1s", destination: s.lab.destinationFQDN, endpoint: endpoint,
                                           via: s.via, credential: s.lab.userCredential())
        }
        await s.stop()
        #expect(error?.status == .accessDenied)
        #expect(error?.stage == .source)
        #expect(s.lab.sourceVMs.contains("vm-p1s"))
    }
}
