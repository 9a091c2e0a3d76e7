import Directory
import Hosts
import MigrationRules
import Testing
import WindowsStatus

@Suite("Authentication rules (A1–A7)")
struct AuthenticationRuleTests {
    @Test("A1 passes: CredSSP move started from a console sign-on at the source")
    func a1Passes() throws {
        var w = World.contosoLab()
        try w.apply(.signOn(user: "alice", host: "TestServer01", kind: .console))
        let r = try w.apply(.move(Lab.move()))
        #expect(r.outcomes.first?.isSuccess == true)
        #expect(w.host("TestServer02")?.virtualMachine("VM1") != nil)
        #expect(w.host("TestServer01")?.virtualMachine("VM1") == nil)
    }

    @Test("A1 passes from Remote Desktop and from a CredSSP remote shell on the source")
    func a1PassesOtherSessions() throws {
        for kind in [SignOnKind.remoteDesktop, .remoteShellCredSSP] {
            var w = World.contosoLab()
            try w.apply(.signOn(user: "alice", host: "TestServer01", kind: kind, from: "ADMIN-WS01"))
            #expect(try w.evaluate(Lab.move()).isSuccess, "\(kind)")
        }
    }

    @Test("A1 fails: CredSSP move started from a workstation, with the seed's exact two lines")
    func a1FailsFromWorkstation() throws {
        var w = World.contosoLab()
        try w.apply(.signOn(user: "alice", host: "ADMIN-WS01", kind: .console))
        let f = try #require(Lab.failure(try w.evaluate(Lab.move(startedFrom: "ADMIN-WS01"))))
        #expect(f.rule == .a1)
        #expect(f.stage == .source)
        #expect(f.status == .noCredentials)
        #expect(f.status.code == 0x8009_030E)
        #expect(f.message == Lab.seedMessage("TestServer02"))
        #expect(f.fixes.contains { $0.contains("Sign on to TestServer01") })
    }

    @Test("A1 fails: Kerberos remote shell on the source leaves no reusable credentials")
    func a1FailsKerberosShell() throws {
        var w = World.contosoLab()
        try w.apply(.signOn(user: "alice", host: "TestServer01", kind: .remoteShellKerberos, from: "ADMIN-WS01"))
        let f = try #require(Lab.failure(try w.evaluate(Lab.move())))
        #expect(f.rule == .a1)
        #expect(f.explanation.contains("network logon"))
        #expect(f.message == Lab.seedMessage("TestServer02"))
    }

    @Test("The exact two-line text of the seed")
    func exactText() throws {
        var w = World.contosoLab()
        try w.apply(.signOn(user: "alice", host: "TestServer01", kind: .console))
        try w.apply(.move(Lab.move()))
        let f = try #require(Lab.failure(try w.evaluate(Lab.move(from: "TestServer02", to: "TestServer01", startedFrom: "TestServer01"))))
        #expect(f.message == """
            Virtual machine migration operation failed at migration Source.
            Failed to establish a connection with host TestServer01: No credentials are available in the security package (0x8009030E).
            """)
    }

    @Test("A6: the round trip TestServer01 → TestServer02 → back fails from the same sign-on, works from TestServer02")
    func a6RoundTrip() throws {
        var w = World.contosoLab()
        try w.apply(.signOn(user: "alice", host: "TestServer01", kind: .console))
        #expect(try w.apply(.move(Lab.move())).outcomes.first?.isSuccess == true)

        let back = Lab.move(from: "TestServer02", to: "TestServer01", startedFrom: "TestServer01")
        let result = try w.apply(.move(back))
        let f = try #require(result.outcomes.first?.failure)
        #expect(f.rule == .a1)
        #expect(f.relatedRules == [.a6])
        #expect(f.message == Lab.seedMessage("TestServer01"))
        #expect(f.fixes.first?.contains("Sign on to TestServer02") == true)
        #expect(w.host("TestServer02")?.virtualMachine("VM1") != nil, "a failed move leaves the VM where it was")

        try w.apply(.signOn(user: "alice", host: "TestServer02", kind: .remoteDesktop))
        let again = try w.apply(.move(Lab.move(from: "TestServer02", to: "TestServer01")))
        #expect(again.outcomes.first?.isSuccess == true)
        #expect(w.host("TestServer01")?.virtualMachine("VM1") != nil)
    }

    @Test("A2 fails: Kerberos without constrained delegation; the fix names the exact commands")
    func a2Fails() throws {
        let w = try Lab.kerberosLab()
        let f = try #require(Lab.failure(try w.evaluate(Lab.move(startedFrom: "ADMIN-WS01"))))
        #expect(f.rule == .a2)
        #expect(f.message == Lab.seedMessage("TestServer02"))
        #expect(f.fixes.contains("Set-ADComputer -Identity TestServer01 -Add @{'msDS-AllowedToDelegateTo'='Microsoft Virtual System Migration Service/TestServer02.contoso.com','Microsoft Virtual System Migration Service/TestServer02'}"))
        #expect(f.fixes.contains("or with samba-tool: samba-tool delegation add-service TestServer01$ 'Microsoft Virtual System Migration Service/TestServer02.contoso.com'"))
        #expect(f.fixes.contains { $0.hasPrefix("then purge the source's tickets: klist -li 0x3e7 purge") })
    }

    @Test("A2 passes: Kerberos-only delegation lets the move start from any domain machine")
    func a2Passes() throws {
        let w = try Lab.delegatedLab()
        let outcome = try w.evaluate(Lab.move(startedFrom: "ADMIN-WS01"))
        #expect(outcome.isSuccess)
        #expect(outcome.report?.authentication == .kerberos)
    }

    @Test("A2: storage moves also need cifs/<destination>")
    func a2Storage() throws {
        let w = try Lab.delegatedLab()
        let f = try #require(Lab.failure(try w.evaluate(Lab.move(startedFrom: "ADMIN-WS01", kind: .both))))
        #expect(f.rule == .a2)
        #expect(f.fixes.first == "Set-ADComputer -Identity TestServer01 -Add @{'msDS-AllowedToDelegateTo'='cifs/TestServer02.contoso.com','cifs/TestServer02'}")
        #expect(try w.evaluate(Lab.move(startedFrom: "ADMIN-WS01", kind: .storage)).failure?.rule == .a2)

        let full = try Lab.delegatedLab(services: Lab.migrationTo02 + ["cifs/TestServer02.contoso.com", "cifs/TestServer02"])
        #expect(try full.evaluate(Lab.move(startedFrom: "ADMIN-WS01", kind: .both)).isSuccess)
        #expect(try full.evaluate(Lab.move(startedFrom: "ADMIN-WS01", kind: .storage)).isSuccess)
    }

    /// A 2016 source (TestServer03) and a 2019 destination (TestServer04), Kerberos both.
    private func laterGenerations(kind: DelegationKind) throws -> World {
        var w = World.contosoLab()
        try w.addHost(name: "TestServer04", domain: "contoso.com", os: .ws2019, logonDC: "DC02", addresses: ["192.168.10.14"])
        for h in ["TestServer03", "TestServer04"] {
            try w.apply(.enableMigration(host: h))
            try w.apply(.setAuthenticationType(host: h, type: .kerberos))
        }
        try w.apply(.addMigrationNetwork(host: "TestServer04", subnet: "192.168.10.0/24"))
        try w.apply(.createVM(host: "TestServer03", name: "VM3"))
        try w.apply(.addDelegation(computer: "TestServer03", services: ["Microsoft Virtual System Migration Service/TestServer04.contoso.com"], by: "alice", dc: "DC02"))
        if kind == .constrainedAnyProtocol {
            try w.apply(.setDelegationKind(computer: "TestServer03", kind: .constrainedAnyProtocol, by: "alice", dc: "DC02"))
        }
        try w.apply(.purgeTickets(host: "TestServer03"))
        try w.apply(.signOn(user: "alice", host: "ADMIN-WS01", kind: .console))
        try w.apply(.signOn(user: "alice", host: "TestServer03", kind: .console))
        return w
    }

    @Test("A2b fails: 2016 source managed remotely with a Kerberos-only entry")
    func a2bFails() throws {
        let w = try laterGenerations(kind: .constrainedKerberosOnly)
        let f = try #require(Lab.failure(try w.evaluate(Lab.move("VM3", from: "TestServer03", to: "TestServer04", startedFrom: "ADMIN-WS01"))))
        #expect(f.rule == .a2b)
        #expect(f.message == Lab.seedMessage("TestServer04"))
        #expect(f.fixes.contains("Set-ADAccountControl -Identity 'TestServer03$' -TrustedToAuthForDelegation $true"))
        #expect(f.fixes.contains("or with samba-tool: samba-tool delegation for-any-protocol TestServer03$ on"))
    }

    @Test("A2b passes: any-protocol on 2016, or Kerberos-only started at the source's console")
    func a2bPasses() throws {
        let any = try laterGenerations(kind: .constrainedAnyProtocol)
        #expect(try any.evaluate(Lab.move("VM3", from: "TestServer03", to: "TestServer04", startedFrom: "ADMIN-WS01")).isSuccess)
        let local = try laterGenerations(kind: .constrainedKerberosOnly)
        #expect(try local.evaluate(Lab.move("VM3", from: "TestServer03", to: "TestServer04")).isSuccess)
    }

    @Test("A3: an added entry counts only after replication to the logon DC and a new ticket")
    func a3Added() throws {
        var w = try Lab.kerberosLab()
        let move = Lab.move(startedFrom: "ADMIN-WS01")
        // Written on DC02; TestServer01 logs on to DC01 and holds a ticket from boot.
        try w.apply(.addDelegation(computer: "TestServer01", services: Lab.migrationTo02, by: "alice", dc: "DC02"))
        var f = try #require(Lab.failure(try w.evaluate(move)))
        #expect(f.rule == .a3)
        #expect(f.message == Lab.seedMessage("TestServer02"))
        #expect(f.fixes.contains { $0.hasPrefix("repadmin /replicate DC01 DC02") })

        // A new ticket alone is not enough: DC01 has not got the change.
        try w.apply(.purgeTickets(host: "TestServer01"))
        f = try #require(Lab.failure(try w.apply(.move(move)).outcomes[0]))
        #expect(f.rule == .a3)

        // Replication alone is not enough: the ticket obtained above carries the old setting.
        try w.apply(.replicate(from: "DC02", to: "DC01"))
        f = try #require(Lab.failure(try w.evaluate(move)))
        #expect(f.rule == .a3)
        #expect(f.explanation.contains("still holds a ticket"))

        // Both: it works. (Or the ticket expires after 10 hours.)
        var expired = w
        expired.advance(by: .hours(10))
        #expect(try expired.evaluate(move).isSuccess)
        var restarted = w
        try restarted.apply(.restartHost(host: "TestServer01"))
        try restarted.apply(.signOn(user: "alice", host: "ADMIN-WS01", kind: .console))
        #expect(try restarted.evaluate(move).isSuccess)
        try w.apply(.purgeTickets(host: "TestServer01"))
        #expect(try w.evaluate(move).isSuccess)
    }

    @Test("A3: a removed entry keeps working until replication and a new ticket")
    func a3Removed() throws {
        var w = try Lab.delegatedLab()
        let move = Lab.move(startedFrom: "ADMIN-WS01")
        try w.apply(.move(move))            // TestServer01 now holds a ticket with the entry
        try w.apply(.removeDelegation(computer: "TestServer01", services: Lab.migrationTo02, by: "alice", dc: "DC02"))
        try w.apply(.replicateAll)
        // VM1 is on TestServer02; bring another VM to TestServer01 to test the same direction.
        try w.apply(.createVM(host: "TestServer01", name: "VM2"))
        let move2 = Lab.move("VM2", startedFrom: "ADMIN-WS01")
        let outcome = try w.evaluate(move2)
        #expect(outcome.isSuccess, "the old ticket still carries the entry")
        #expect(outcome.report?.warnings.contains { $0.rule == .a3 } == true)

        try w.apply(.purgeTickets(host: "TestServer01"))
        let f = try #require(Lab.failure(try w.evaluate(move2)))
        #expect(f.rule == .a2)
    }

    @Test("A3: a removed entry on an unreplicated DC keeps working even after a new ticket")
    func a3RemovedNotReplicated() throws {
        var w = try Lab.delegatedLab()
        try w.apply(.removeDelegation(computer: "TestServer01", services: Lab.migrationTo02, by: "alice", dc: "DC02"))
        try w.apply(.purgeTickets(host: "TestServer01"))
        let outcome = try w.evaluate(Lab.move(startedFrom: "ADMIN-WS01"))
        #expect(outcome.isSuccess)
        #expect(outcome.report?.warnings.first?.rule == .a3)
        try w.apply(.replicate(from: "DC02", to: "DC01"))
        #expect(try w.evaluate(Lab.move(startedFrom: "ADMIN-WS01")).failure?.rule == .a2)
    }

    @Test("A4 fails for a sensitive user and a Protected Users member, with CredSSP and with Kerberos")
    func a4Fails() throws {
        var w = try Lab.delegatedLab()
        try w.apply(.addGroupMember(group: "Hyper-V Operators", member: "carol"))
        try w.apply(.replicateAll)
        for user in ["carol", "dave"] {
            try w.apply(.signOn(user: user, host: "ADMIN-WS01", kind: .console))
            let f = try #require(Lab.failure(try w.evaluate(Lab.move(user: user, startedFrom: "ADMIN-WS01"))))
            #expect(f.rule == .a4, "\(user)")
            #expect(f.message == Lab.seedMessage("TestServer02"))
        }
        var c = World.contosoLab()
        try c.apply(.addGroupMember(group: "Hyper-V Operators", member: "carol"))
        try c.apply(.replicateAll)
        for user in ["carol", "dave"] {
            try c.apply(.signOn(user: user, host: "TestServer01", kind: .console))
            #expect(try c.evaluate(Lab.move(user: user)).failure?.rule == .a4, "\(user) CredSSP")
        }
    }

    @Test("A4 passes for an ordinary operator (bob, through nested group membership)")
    func a4Passes() throws {
        var w = try Lab.delegatedLab()
        try w.apply(.signOn(user: "bob", host: "ADMIN-WS01", kind: .console))
        #expect(try w.evaluate(Lab.move(user: "bob", startedFrom: "ADMIN-WS01")).isSuccess)
        try w.apply(.setSensitive(user: "bob", sensitive: true, dc: "DC01"))
        #expect(try w.evaluate(Lab.move(user: "bob", startedFrom: "ADMIN-WS01")).failure?.rule == .a4)
    }

    @Test("A5 fails: constrained delegation to a host in another domain; CredSSP works across the trust")
    func a5() throws {
        var w = try Lab.kerberosLab()
        try w.apply(.addDelegation(computer: "TestServer01",
                                   services: ["Microsoft Virtual System Migration Service/FabServer01.fabrikam.com"], by: "alice", dc: "DC01"))
        try w.apply(.purgeTickets(host: "TestServer01"))
        let f = try #require(Lab.failure(try w.evaluate(Lab.move(to: "FabServer01", startedFrom: "ADMIN-WS01"))))
        #expect(f.rule == .a5)
        #expect(f.message == Lab.seedMessage("FabServer01"))

        var c = World.contosoLab()
        try c.apply(.signOn(user: "alice", host: "TestServer01", kind: .console))
        #expect(try c.evaluate(Lab.move(to: "FabServer01")).isSuccess)
    }

    @Test("A7 fails: Credential Guard blocks CredSSP even from the source's console; Kerberos works")
    func a7() throws {
        var w = World.contosoLab()
        try w.apply(.setCredentialGuard(host: "TestServer01", enabled: true))
        try w.apply(.signOn(user: "alice", host: "TestServer01", kind: .console))
        let f = try #require(Lab.failure(try w.evaluate(Lab.move())))
        #expect(f.rule == .a7)
        #expect(f.message == Lab.seedMessage("TestServer02"))

        var k = try Lab.delegatedLab()
        try k.apply(.setCredentialGuard(host: "TestServer01", enabled: true))
        #expect(try k.evaluate(Lab.move(startedFrom: "ADMIN-WS01")).isSuccess)

        var off = World.contosoLab()
        try off.apply(.signOn(user: "alice", host: "TestServer01", kind: .console))
        #expect(try off.evaluate(Lab.move()).isSuccess)
    }

    @Test("A7: Credential Guard is on by default from Windows Server 2025")
    func a7Default() throws {
        var w = World.contosoLab()
        try w.addHost(name: "TestServer25", domain: "contoso.com", os: .ws2025, logonDC: "DC01", addresses: ["192.168.10.25"])
        #expect(w.host("TestServer25")?.credentialGuard == true)
        #expect(w.host("TestServer01")?.credentialGuard == false)
    }
}
