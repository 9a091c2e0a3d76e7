import Foundation
import GSS
import Hosts
@testable import MigrationService
import Testing
import TestRealm
import WindowsStatus

/// Rule A1 and A6 for real: two daemons (TestServer01 on 127.0.0.11, TestServer02 on 127.0.0.12) with the
/// migration authentication type CredSSP, a workstation on 127.0.0.13, the shared LDAP realm.
@Suite("CredSSP sign-ons and CredSSP migrations")
struct CredSSPMoveTests {
    /// Both hosts run both roles, so each has `host/<fqdn>` and the migration SPN.
    struct TwoHosts {
        let lab: ServiceLab
        let server01: HostDaemon
        let server02: HostDaemon
        let workstation: ManagementClient

        var name01: String { lab.sourceFQDN }
        var name02: String { lab.destinationFQDN }

        func via(_ daemon: HostDaemon) throws(MigrationServiceError) -> ManagementClient.Source {
            guard let endpoint = daemon.management.endpoint else {
                throw .configuration("\(daemon.configuration.name) is not listening", stage: .source)
            }
            return ManagementClient.Source(fqdn: daemon.configuration.fqdn, endpoint: endpoint, realm: lab.realmName)
        }

        func migrationEndpoint(_ daemon: HostDaemon) throws -> ServiceEndpoint {
            try #require(daemon.destination.endpoint)
        }

        /// A CredSSP remote shell's credentials (the password reaches the host).
        func credSSP(password: String? = nil) async throws(MigrationServiceError) -> MigrationAuthentication {
            .credSSP(try await SignOnCredentials.signOn(user: lab.user, realm: lab.realmName,
                                                        password: password ?? lab.userPassword, destination: name01))
        }

        func stop() async {
            await server01.stop()
            await server02.stop()
        }
    }

    static func start() async throws -> TwoHosts {
        let lab = try await ServiceLab.make()
        let realm = lab.realm
        let extraHost = MigrationServiceNames.hostPrincipal(fqdn: lab.destinationFQDN, realm: nil)
        let extraMigration = MigrationServiceNames.migrationPrincipal(fqdn: lab.sourceFQDN, realm: nil)
        try await realm.addPrincipal(extraHost)
        try await realm.addPrincipal(extraMigration)
        let keytab01 = try await realm.exportKeytab(
            [MigrationServiceNames.hostPrincipal(fqdn: lab.sourceFQDN, realm: nil), extraMigration],
            to: lab.directory + "/server01.keytab")
        let keytab02 = try await realm.exportKeytab(
            [extraHost, MigrationServiceNames.migrationPrincipal(fqdn: lab.destinationFQDN, realm: nil)],
            to: lab.directory + "/server02.keytab")
        func configuration(_ name: String, _ fqdn: String, _ address: String, keytab: String, vms: VMStore,
                           peer: String, peerAddress: String) -> HostConfiguration {
            HostConfiguration(name: name, fqdn: fqdn, address: address, realm: lab.realmName, keytab: keytab,
                              ccacheDirectory: lab.directory, migrationPort: 0, managementPort: 0, allowedUsers: [lab.user],
                              incomingNetworks: [IPv4Subnet("\(address)/32")!], vmDirectory: vms.directory,
                              hosts: [peer: peerAddress], authenticationType: .credSSP)
        }
        let server01 = HostDaemon(configuration: configuration(
            "TestServer01", lab.sourceFQDN, ServiceLab.sourceAddress, keytab: keytab01, vms: lab.sourceVMs,
            peer: lab.destinationFQDN, peerAddress: ServiceLab.destinationAddress))
        let server02 = HostDaemon(configuration: configuration(
            "TestServer02", lab.destinationFQDN, ServiceLab.destinationAddress, keytab: keytab02, vms: lab.destinationVMs,
            peer: lab.sourceFQDN, peerAddress: ServiceLab.sourceAddress))
        try await server01.start()
        try await server02.start()
        return TwoHosts(lab: lab, server01: server01, server02: server02,
                        workstation: try ManagementClient(localAddress: ServiceLab.workstationAddress))
    }

    /// The seed's two lines for a move started where the source has no credentials.
    static func seedError(_ destination: String) -> String {
        "Virtual machine migration operation failed at migration Source.\n"
            + "Failed to establish a connection with host \(destination): "
            + "No credentials are available in the security package (0x8009030E)."
    }

    /// Runs `body` and returns the `MigrationServiceError` it throws (nil if it does not).
    static func failure<R>(_ body: () async throws(MigrationServiceError) -> R) async -> MigrationServiceError? {
        do {
            _ = try await body()
            return nil
        } catch {
            return error
        }
    }

    @Test("A6: CredSSP sign-on to TestServer01 moves to TestServer02; moving back from that sign-on fails; signed on to TestServer02 it works")
    func roundTrip() async throws {
        let s = try await Self.start()
        defer { s.lab.remove() }
        let bytes = try s.lab.createVM("vm-a6", size: 300_000)
        let endpoint02 = try s.migrationEndpoint(s.server02)
        let endpoint01 = try s.migrationEndpoint(s.server01)
        let signOn01 = try await s.credSSP()
        // Signed on to TestServer01 with CredSSP: the move to TestServer02 works, over CredSSP.
        let (there, back) = try await s.workstation.withSession(via: try s.via(s.server01), signOn: signOn01) { session throws(MigrationServiceError) in
            let there = try await session.requestMove(vm: "vm-a6", destination: s.name02, endpoint: endpoint02)
            // From that same sign-on (its Kerberos credential), Move-VM -ComputerName TestServer02 back to
            // TestServer01: a Kerberos (network) logon on TestServer02, which has no credentials to delegate.
            guard case .credSSP(let user) = signOn01 else { throw MigrationServiceError.configuration("no", stage: .source) }
            let back = await Self.failure { () throws(MigrationServiceError) in
                try await s.workstation.withSession(via: try s.via(s.server02), signOn: .kerberos(user.credential)) { remote throws(MigrationServiceError) in
                    try await remote.requestMove(vm: "vm-a6", destination: "TestServer01", endpoint: endpoint01)
                }
            }
            return (there, back)
        }
        #expect(there.destinationPrincipal == s.lab.userPrincipal)
        #expect(s.lab.contents(s.lab.destinationVMs, "vm-a6") == bytes)
        #expect(!s.lab.sourceVMs.contains("vm-a6"))
        #expect(back?.message == Self.seedError("TestServer01"))
        #expect(back?.status == .noCredentials)
        #expect(back?.detail.contains("signed on to TestServer02 without CredSSP") == true, "\(back?.detail ?? "")")
        #expect(s.lab.destinationVMs.contains("vm-a6"), "the failed move left the VM where it was")
        // Signed on to TestServer02 with CredSSP: the move back works.
        let credSSP02 = try await s.credSSP()
        let returned = try await s.workstation.withSession(via: try s.via(s.server02), signOn: credSSP02) { session throws(MigrationServiceError) in
            try await session.requestMove(vm: "vm-a6", destination: s.name01, endpoint: endpoint01)
        }
        let events01 = await s.server01.destination.events()
        await s.stop()
        #expect(returned.destinationPrincipal == s.lab.userPrincipal)
        #expect(s.lab.contents(s.lab.sourceVMs, "vm-a6") == bytes)
        #expect(!s.lab.destinationVMs.contains("vm-a6"))
        #expect(events01.contains(.started(vm: "vm-a6", user: s.lab.userPrincipal)))
    }

    @Test("A1: a move started from a Kerberos sign-on (remote shell on the source, workstation, destination) fails at the source with 0x8009030E",
          arguments: [ServiceLab.sourceAddress, ServiceLab.workstationAddress, ServiceLab.destinationAddress])
    func kerberosSignOn(from address: String) async throws {
        let s = try await Self.start()
        defer { s.lab.remove() }
        try s.lab.createVM("vm-a1", size: 50_000)
        let client = try ManagementClient(localAddress: address)
        let endpoint02 = try s.migrationEndpoint(s.server02)
        let kerberos = try await s.lab.userCredential()
        let error = await Self.failure { () throws(MigrationServiceError) in
            try await client.withSession(via: try s.via(s.server01), signOn: .kerberos(kerberos)) { session throws(MigrationServiceError) in
                try await session.requestMove(vm: "vm-a1", destination: s.name02, endpoint: endpoint02)
            }
        }
        let events02 = await s.server02.destination.events()
        await s.stop()
        #expect(error?.message == Self.seedError(s.name02))
        #expect(error?.detail.contains("rule A1") == true, "\(error?.detail ?? "")")
        #expect(error?.stage == .source)
        #expect(events02.isEmpty, "the source failed before connecting")
        #expect(s.lab.sourceVMs.contains("vm-a1"))
    }

    @Test("A4 (a protected user) and A7 (Credential Guard on the source): a CredSSP sign-on's move fails with 0x8009030E",
          arguments: ["A4", "A7"])
    func noReusableCredentials(rule: String) async throws {
        let s = try await Self.start()
        defer { s.lab.remove() }
        var configuration = s.server01.configuration
        if rule == "A4" { configuration.protectedUsers = [s.lab.user] } else { configuration.credentialGuard = true }
        try await s.server01.reload(configuration)
        try s.lab.createVM("vm-\(rule)", size: 50_000)
        let endpoint02 = try s.migrationEndpoint(s.server02)
        let error = await Self.failure { () throws(MigrationServiceError) in
            try await s.workstation.withSession(via: try s.via(s.server01), signOn: s.credSSP()) { session throws(MigrationServiceError) in
                try await session.requestMove(vm: "vm-\(rule)", destination: s.name02, endpoint: endpoint02)
            }
        }
        let events02 = await s.server02.destination.events()
        await s.stop()
        #expect(error?.message == Self.seedError(s.name02))
        #expect(error?.detail.contains("rule \(rule)") == true, "\(error?.detail ?? "")")
        #expect(events02.isEmpty, "the source failed before connecting")
        #expect(s.lab.sourceVMs.contains("vm-\(rule)"))
    }

    @Test("A wrong password at a CredSSP sign-on is SEC_E_LOGON_DENIED (0x8009030C), at the client and at the daemon")
    func wrongPassword() async throws {
        let s = try await Self.start()
        defer { s.lab.remove() }
        // The client cannot get the user's ticket with it.
        let local = await Self.failure { () throws(MigrationServiceError) in try await s.credSSP(password: "wrong") }
        #expect(local?.status == .logonDenied)
        #expect(local?.kind == .authentication)
        // A client that authenticates with a valid ticket but delivers a wrong password: the daemon refuses it.
        let good = try await SignOnCredentials.signOn(user: s.lab.user, realm: s.lab.realmName, password: s.lab.userPassword,
                                                      destination: s.name01)
        let forged = SignOnCredentials(principal: good.principal, credential: good.credential,
                                       spnegoCredential: good.spnegoCredential,
                                       password: .init(domain: s.lab.realmName, user: s.lab.user, password: "wrong"))
        let remote = await Self.failure { () throws(MigrationServiceError) in
            try await s.workstation.withSession(via: try s.via(s.server01), signOn: .credSSP(forged)) { $0.principal }
        }
        let open = s.server01.management.signedOnUsers
        await s.stop()
        #expect(remote?.status == .logonDenied)
        #expect(remote?.message.contains("0x8009030C") == true)
        #expect(open.isEmpty)
    }

    @Test("Delivered credentials live only as long as the sign-on: after sign-off a Kerberos connection's move fails")
    func signOff() async throws {
        let s = try await Self.start()
        defer { s.lab.remove() }
        try s.lab.createVM("vm-off", size: 50_000)
        let endpoint02 = try s.migrationEndpoint(s.server02)
        let (during, heldDuring) = try await s.workstation.withSession(via: try s.via(s.server01), signOn: s.credSSP()) { _ throws(MigrationServiceError) in
            let open = s.server01.management.openSignOns
            return (open, open.map { !$0.isWiped })
        }
        #expect(during.map(\.principal) == [s.lab.userPrincipal])
        #expect(heldDuring == [true], "held while signed on")
        var after = s.server01.management.signedOnUsers
        for _ in 0..<200 where !after.isEmpty {
            try await Task.sleep(for: .milliseconds(10))
            after = s.server01.management.signedOnUsers
        }
        #expect(during.map(\.isWiped) == [true])
        #expect(after.isEmpty)
        let kerberos = try await s.lab.userCredential()
        let error = await Self.failure { () throws(MigrationServiceError) in
            try await s.workstation.withSession(via: try s.via(s.server01), signOn: .kerberos(kerberos)) { session throws(MigrationServiceError) in
                try await session.requestMove(vm: "vm-off", destination: s.name02, endpoint: endpoint02)
            }
        }
        await s.stop()
        #expect(error?.message == Self.seedError(s.name02))
        #expect(s.lab.sourceVMs.contains("vm-off"))
    }

    @Test("Stopping the daemon wipes the credentials of open sign-ons")
    func stopWipes() async throws {
        let s = try await Self.start()
        defer { s.lab.remove() }
        guard case .credSSP(let mine) = try await s.credSSP() else { return }
        let daemonSide = try await s.workstation.withSession(via: try s.via(s.server01), signOn: .credSSP(mine)) { _ throws(MigrationServiceError) in
            let open = s.server01.management.openSignOns
            await s.server01.management.stop()
            return open
        }
        await s.stop()
        #expect(daemonSide.count == 1)
        #expect(daemonSide.map(\.isWiped) == [true])
        #expect(s.server01.management.signedOnUsers.isEmpty)
        #expect(!mine.isWiped, "the client's own copy is the client's")
    }

    @Test("The CredSSP migration connection: refused where CredSSP is not offered, then 3 SMB connections each deliver the password; a wrong one is 0x8009030C at the destination")
    func migrationConnection() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination()
        let target = try lab.target(destination)
        let source = try lab.source
        let user = try await SignOnCredentials.signOn(user: lab.user, realm: lab.realmName, password: lab.userPassword,
                                                      destination: lab.destinationFQDN)
        let refused = await Self.failure { () throws(MigrationServiceError) in
            try await source.checkConnection(to: target, authentication: .credSSP(user))
        }
        destination.offerCredSSP(try ServiceTLSIdentity.generate(commonName: lab.destinationFQDN))
        let bytes = try lab.createVM("vm-smb", size: 700_000)
        let report = try await source.move(vm: "vm-smb", to: target, authentication: .credSSP(user),
                                           options: MoveOptions(performance: .smb, channels: 3, chunkSize: 65536))
        let forged = SignOnCredentials(principal: user.principal, credential: user.credential,
                                       spnegoCredential: user.spnegoCredential,
                                       password: .init(domain: lab.realmName, user: lab.user, password: "wrong"))
        let wrong = await Self.failure { () throws(MigrationServiceError) in
            try await source.checkConnection(to: target, authentication: .credSSP(forged))
        }
        let events = await destination.events()
        await destination.stop()
        #expect(refused?.status == .packageNotFound)
        #expect(refused?.message.contains("host \(lab.destinationFQDN):") == true)
        #expect(report.destinationPrincipal == lab.userPrincipal)
        #expect(report.channels == 3)
        #expect(lab.contents(lab.destinationVMs, "vm-smb") == bytes)
        #expect(!user.isWiped, "each connection delivers a copy")
        #expect(wrong?.status == .logonDenied)
        #expect(wrong?.message.contains("host \(lab.destinationFQDN): The logon attempt failed (0x8009030C).") == true)
        #expect(events.contains(.authenticationFailed(status: .logonDenied)))
    }

    @Test("A CredSSP sign-on refuses garbage TLS and a sealing Kerberos context of another user; no session is kept")
    func hostileSignOns() async throws {
        let s = try await Self.start()
        defer { s.lab.remove() }
        let management = MigrationTarget(fqdn: s.name01, endpoint: try #require(s.server01.management.endpoint))
        let garbage = await Self.failure { () throws(MigrationServiceError) in
            try await MigrationSource.connect(from: ServiceLab.workstationAddress, to: management) { conn throws(MigrationServiceError) in
                try await KerberosHandshake.clientHello(conn, purpose: .management, authentication: .credSSP)
                try await conn.sendClear(.credSSP([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]))
                while true { _ = try await conn.receive() }
            }
        }
        // CredSSP delivers this user's password; the sealing Kerberos context is another user's.
        let other = "other-\(s.lab.suffix)"
        try await s.lab.realm.addPrincipal(other, password: "Other-1")
        let user = try await SignOnCredentials.signOn(user: s.lab.user, realm: s.lab.realmName, password: s.lab.userPassword,
                                                      destination: s.name01)
        let impostor = try await SignOnCredentials.signOn(user: other, realm: s.lab.realmName, password: "Other-1",
                                                          destination: s.name01)
        let mixed = SignOnCredentials(principal: user.principal, credential: impostor.credential,
                                      spnegoCredential: user.spnegoCredential,
                                      password: .init(domain: s.lab.realmName, user: s.lab.user, password: s.lab.userPassword))
        let mismatch = await Self.failure { () throws(MigrationServiceError) in
            try await s.workstation.withSession(via: try s.via(s.server01), signOn: .credSSP(mixed)) { $0.principal }
        }
        let open = s.server01.management.signedOnUsers
        await s.stop()
        #expect(garbage?.kind == .authentication, "\(String(describing: garbage))")
        #expect(garbage?.message.contains("CredSSP authentication of the client failed") == true)
        #expect(mismatch?.status == .logonDenied)
        #expect(mismatch?.detail.contains("Kerberos: \(other)@") == true, "\(mismatch?.detail ?? "")")
        #expect(open.isEmpty)
    }

    @Test("P1 is checked again for every move of an open session: a reload that removes the user denies the next move, the session survives")
    func sessionFollowsReload() async throws {
        let s = try await Self.start()
        defer { s.lab.remove() }
        let bytes = try s.lab.createVM("vm-p1", size: 50_000)
        let endpoint02 = try s.migrationEndpoint(s.server02)
        let allowed = s.server01.configuration
        var denied = allowed
        denied.allowedUsers = []
        let (refused, report) = try await s.workstation.withSession(via: try s.via(s.server01), signOn: s.credSSP()) { session throws(MigrationServiceError) in
            try await s.server01.reload(denied)
            let refused = await Self.failure { () throws(MigrationServiceError) in
                try await session.requestMove(vm: "vm-p1", destination: s.name02, endpoint: endpoint02)
            }
            try await s.server01.reload(allowed)
            return (refused, try await session.requestMove(vm: "vm-p1", destination: s.name02, endpoint: endpoint02))
        }
        await s.stop()
        #expect(refused?.status == .accessDenied)
        #expect(refused?.stage == .source)
        #expect(report.destinationPrincipal == s.lab.userPrincipal)
        #expect(s.lab.contents(s.lab.destinationVMs, "vm-p1") == bytes)
    }

    @Test("A2 after a CredSSP sign-on: a source that authenticates with Kerberos still acts through constrained delegation")
    func credSSPSignOnOnKerberosSourceNeedsDelegation() async throws {
        let s = try await Self.start()
        defer { s.lab.remove() }
        var kerberos = s.server01.configuration
        kerberos.authenticationType = .kerberos
        try await s.server01.reload(kerberos)
        let bytes = try s.lab.createVM("vm-a2", size: 40_000)
        let endpoint02 = try s.migrationEndpoint(s.server02)
        // No delegation entry: the user's password is on the host, but Kerberos moves act by S4U2Proxy.
        let refused = await Self.failure { () throws(MigrationServiceError) in
            try await s.workstation.withSession(via: try s.via(s.server01), signOn: s.credSSP()) { session throws(MigrationServiceError) in
                try await session.requestMove(vm: "vm-a2", destination: s.name02, endpoint: endpoint02)
            }
        }
        #expect(refused?.message == Self.seedError(s.name02))
        #expect(refused?.detail.contains("KDC can't fulfill requested option") == true, "KDC_ERR_BADOPTION from the real KDC: \(refused?.detail ?? "")")
        #expect(s.lab.sourceVMs.contains("vm-a2"))
        // With "Kerberos only" delegation to the destination's migration service it works, as the user —
        // once the source has a new ticket (rule A3: until then its ticket's refusal stands).
        try await s.lab.realm.setAllowedToDelegate(
            "host/\(s.lab.sourceFQDN)",
            targets: [MigrationServiceNames.migrationPrincipal(fqdn: s.lab.destinationFQDN, realm: s.lab.realmName)])
        let kept = await Self.failure { () throws(MigrationServiceError) in
            try await s.workstation.withSession(via: try s.via(s.server01), signOn: s.credSSP()) { session throws(MigrationServiceError) in
                try await session.requestMove(vm: "vm-a2", destination: s.name02, endpoint: endpoint02)
            }
        }
        #expect(kept?.message == Self.seedError(s.name02))
        #expect(kept?.detail.contains("the answer this host's current ticket got") == true, "\(kept?.detail ?? "")")
        // `klist purge` of the host's own ccache: a new TGT, and the KDC is asked again.
        let source = s.server01.configuration
        try FileManager.default.removeItem(atPath: "\(source.ccacheDirectory)/host-\(source.fqdn).ccache")
        let report = try await s.workstation.withSession(via: try s.via(s.server01), signOn: s.credSSP()) { session throws(MigrationServiceError) in
            try await session.requestMove(vm: "vm-a2", destination: s.name02, endpoint: endpoint02)
        }
        await s.stop()
        #expect(report.destinationPrincipal == s.lab.userPrincipal)
        #expect(s.lab.contents(s.lab.destinationVMs, "vm-a2") == bytes)
    }
}
