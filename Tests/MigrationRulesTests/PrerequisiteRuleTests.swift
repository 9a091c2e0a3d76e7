import Directory
import Foundation
import Hosts
import MigrationRules
import Testing
import WindowsStatus

@Suite("Prerequisite, network and traffic rules (P1–P5, N1, N2, S1)")
struct PrerequisiteRuleTests {
    private func signedOn(_ user: String = "alice", on host: String = "TestServer01") throws -> World {
        var w = World.contosoLab()
        try w.apply(.signOn(user: user, host: host, kind: .console))
        return w
    }

    @Test("P1 passes through nested groups; fails at the source without membership")
    func p1Source() throws {
        var w = try signedOn("bob")
        #expect(try w.evaluate(Lab.move(user: "bob")).isSuccess, "bob is in Hyper-V Operators, a member of Hyper-V Administrators")
        try w.apply(.removeGroupMember(group: "Hyper-V Operators", member: "bob", dc: "DC01"))
        let f = try #require(Lab.failure(try w.evaluate(Lab.move(user: "bob"))))
        #expect(f.rule == .p1)
        #expect(f.stage == .source)
        #expect(f.status == .accessDenied)
        #expect(f.message.hasSuffix("Access is denied (0x80070005)."))
    }

    @Test("P1 fails at the destination when only the source grants the right")
    func p1Destination() throws {
        var w = try signedOn("bob")
        try w.apply(.removeLocalGroupMember(host: "TestServer02", group: .hyperVAdministrators, member: "CONTOSO\\Hyper-V Operators"))
        let f = try #require(Lab.failure(try w.evaluate(Lab.move(user: "bob"))))
        #expect(f.rule == .p1)
        #expect(f.stage == .destination)
        #expect(f.message.hasPrefix("Virtual machine migration operation failed at migration Destination."))
    }

    @Test("P2 refuses a delegation change by a non-Domain-Admin and changes nothing")
    func p2Refused() throws {
        var w = World.contosoLab()
        let before = w
        #expect(throws: SimulationError.self) {
            try w.apply(.addDelegation(computer: "TestServer01", services: Lab.migrationTo02, by: "bob", dc: "DC01"))
        }
        do {
            try w.apply(.addDelegation(computer: "TestServer01", services: Lab.migrationTo02, by: "bob", dc: "DC01"))
        } catch {
            #expect(error.rule == .p2)
            #expect(error.status == .dsInsufficientAccessRights)
            #expect(error.status.code == 0x8007_2098)
        }
        #expect(w == before)
    }

    @Test("P2 allows a Domain Admin")
    func p2Allowed() throws {
        var w = World.contosoLab()
        try w.apply(.addDelegation(computer: "TestServer01", services: Lab.migrationTo02, by: "CONTOSO\\alice", dc: "DC01"))
        #expect(w.directory.computer("TestServer01", on: "DC01")?.allowedToDelegateTo == Lab.migrationTo02)
        #expect(w.directory.computer("TestServer01", on: "DC01")?.delegation == .constrainedKerberosOnly)
        #expect(w.directory.computer("TestServer01", on: "DC02")?.allowedToDelegateTo == [], "not replicated yet")
    }

    @Test("P3: missing VM, live migration off, no hypervisor — each its own error; all present passes")
    func p3() throws {
        var w = try signedOn()
        #expect(try w.evaluate(Lab.move()).isSuccess)
        var f = try #require(Lab.failure(try w.evaluate(Lab.move("NoSuchVM"))))
        #expect(f.rule == .p3)
        #expect(f.status == .notFound)

        var off = w
        try off.apply(.disableMigration(host: "TestServer02"))
        f = try #require(Lab.failure(try off.evaluate(Lab.move())))
        #expect(f.rule == .p3)
        #expect(f.stage == .destination)
        #expect(f.fixes == ["Enable-VMMigration -ComputerName TestServer02"])

        f = try #require(Lab.failure(try w.evaluate(Lab.move(to: "ADMIN-WS01"))))
        #expect(f.rule == .p3)
        #expect(f.status == .serviceDoesNotExist)

        try w.apply(.disableMigration(host: "TestServer01"))
        f = try #require(Lab.failure(try w.evaluate(Lab.move())))
        #expect(f.stage == .source)
        #expect(f.fixes == ["Enable-VMMigration -ComputerName TestServer01"])
    }

    @Test("P4: 2012 R2 → 2016 works; 2016 → 2012 R2 is refused at the destination")
    func p4() throws {
        var w = try signedOn()
        #expect(try w.evaluate(Lab.move(to: "TestServer03")).isSuccess)
        try w.apply(.createVM(host: "TestServer03", name: "VM3"))
        try w.apply(.signOn(user: "alice", host: "TestServer03", kind: .console))
        let f = try #require(Lab.failure(try w.evaluate(Lab.move("VM3", from: "TestServer03", to: "TestServer01"))))
        #expect(f.rule == .p4)
        #expect(f.stage == .destination)
    }

    @Test("P5: hosts in unrelated domains cannot authenticate; trusting domains can")
    func p5() throws {
        var w = try signedOn()
        try w.directory.addDomain(Domain(dnsName: "northwind.com", netBIOSName: "NORTHWIND"), controllers: ["NW-DC01"])
        try w.addHost(name: "NWServer01", domain: "northwind.com", logonDC: "NW-DC01", addresses: ["192.168.10.31"])
        try w.apply(.enableMigration(host: "NWServer01"))
        try w.apply(.addMigrationNetwork(host: "NWServer01", subnet: "192.168.10.0/24"))
        let f = try #require(Lab.failure(try w.evaluate(Lab.move(to: "NWServer01"))))
        #expect(f.rule == .p5)
        #expect(f.status == .noAuthenticatingAuthority)
        #expect(f.message == "Virtual machine migration operation failed at migration Source.\nFailed to establish a connection with host NWServer01: No authority could be contacted for authentication (0x80090311).")
        #expect(try w.evaluate(Lab.move(to: "FabServer01")).isSuccess, "fabrikam.com trusts contoso.com both ways")

        // A one-way trust is not enough.
        try w.directory.addTrust(.oneWay(trusting: "northwind.com", trusted: "contoso.com"))
        #expect(try w.evaluate(Lab.move(to: "NWServer01")).failure?.rule == .p5)
        try w.directory.addTrust(.oneWay(trusting: "contoso.com", trusted: "northwind.com"))
        #expect(try w.evaluate(Lab.move(to: "NWServer01")).failure?.rule == .p1, "authenticates now; alice is no admin there")
    }

    @Test("N1: no listed network refuses the connection; a listed one or any network accepts")
    func n1() throws {
        var w = try signedOn()
        let ok = try w.evaluate(Lab.move())
        #expect(ok.report?.destinationAddress == IPv4Address("192.168.10.12"))
        try w.apply(.removeMigrationNetwork(host: "TestServer02", subnet: "192.168.10.0/24"))
        let f = try #require(Lab.failure(try w.evaluate(Lab.move())))
        #expect(f.rule == .n1)
        #expect(f.status == .connectionRefused)
        #expect(f.fixes.first == "Add-VMMigrationNetwork 192.168.10.0/24 -Priority 1 -ComputerName TestServer02")

        var other = w
        try other.apply(.addMigrationNetwork(host: "TestServer02", subnet: "10.0.0.0/24", priority: 2))
        #expect(try other.evaluate(Lab.move()).report?.destinationAddress == IPv4Address("10.0.0.12"))
        try other.apply(.setMigrationNetwork(host: "TestServer02", subnet: "10.0.0.0/24", newSubnet: "172.16.0.0/16"))
        #expect(try other.evaluate(Lab.move()).failure?.rule == .n1)

        try w.apply(.setUseAnyNetwork(host: "TestServer02", enabled: true))
        #expect(try w.evaluate(Lab.move()).isSuccess)
    }

    @Test("S1 warns (never fails) when the destination uses any network")
    func s1() throws {
        var w = try signedOn()
        #expect(try w.evaluate(Lab.move()).report?.warnings.isEmpty == true)
        try w.apply(.setUseAnyNetwork(host: "TestServer02", enabled: true))
        let r = try #require(try w.evaluate(Lab.move()).report)
        #expect(r.warnings.map(\.rule) == [.s1])
        #expect(r.warnings[0].fixes.first == "Set-VMHost -ComputerName TestServer02 -UseAnyNetworkForMigration $false")
    }

    @Test("N2: beyond the limit moves queue with positions and then run; they do not fail")
    func n2() throws {
        var w = try signedOn()
        try w.apply(.setMaximumMigrations(host: "TestServer01", count: 1))
        for vm in ["VM2", "VM3"] { try w.apply(.createVM(host: "TestServer01", name: vm)) }
        let moves = ["VM1", "VM2", "VM3"].map { Lab.move($0) }
        let evaluated = try w.evaluate(batch: moves)
        #expect(w.host("TestServer01")?.virtualMachines.count == 3, "evaluate(batch:) does not mutate")
        let r = try w.apply(.moveMany(moves))
        #expect(r.outcomes == evaluated)
        #expect(r.outcomes[0].isSuccess)
        guard case .queued(_, let p1) = r.outcomes[1], case .queued(_, let p2) = r.outcomes[2] else {
            Issue.record("expected queued, got \(r.outcomes)")
            return
        }
        #expect((p1, p2) == (1, 2))
        #expect(w.host("TestServer02")?.virtualMachines.count == 3)

        var two = try signedOn()
        for vm in ["VM2", "VM3"] { try two.apply(.createVM(host: "TestServer01", name: vm)) }
        let out = try two.evaluate(batch: moves)
        #expect(out.map(\.isSuccess) == [true, true, false])
        #expect(out[2].isQueued)
    }

    @Test("Settings: contradictions are refused and change nothing")
    func settings() throws {
        var w = World.contosoLab()
        try w.addHost(name: "Old2012", domain: "contoso.com", os: .ws2012, logonDC: "DC01")
        #expect(w.host("Old2012")?.migration.performanceOption == .tcpIP)
        #expect(w.host("TestServer01")?.migration.performanceOption == .compression)
        let before = w
        #expect(throws: SimulationError.self) { try w.apply(.setPerformanceOption(host: "Old2012", option: .compression)) }
        #expect(throws: SimulationError.self) { try w.apply(.setMaximumMigrations(host: "TestServer01", count: 0)) }
        #expect(throws: SimulationError.self) { try w.apply(.addMigrationNetwork(host: "TestServer01", subnet: "300.1.1.0/24")) }
        #expect(w == before)
        let h = try #require(w.host("TestServer01"))
        #expect(h.migration.authenticationType.wmiValue == 0)
        #expect(MigrationAuthenticationType.kerberos.wmiValue == 1)
        #expect(h.migration.maximumMigrations == 2)
    }

    @Test("diagnose lists every failing rule in order, evaluate the first")
    func diagnoseAll() throws {
        var w = World.contosoLab()
        try w.apply(.signOn(user: "bob", host: "ADMIN-WS01", kind: .console))
        try w.apply(.setUseAnyNetwork(host: "TestServer02", enabled: true))
        try w.apply(.setCredentialGuard(host: "TestServer01", enabled: true))
        try w.apply(.removeLocalGroupMember(host: "TestServer02", group: .hyperVAdministrators, member: "CONTOSO\\Hyper-V Operators"))
        let d = try w.diagnose(Lab.move(user: "bob", startedFrom: "ADMIN-WS01"))
        #expect(d.failures.map(\.rule) == [.a1, .a7, .p1])
        #expect(d.warnings.map(\.rule) == [.s1])
        #expect(try w.evaluate(Lab.move(user: "bob", startedFrom: "ADMIN-WS01")).rule == .a1)
    }

    @Test("The world round-trips through JSON")
    func codable() throws {
        var w = try Lab.delegatedLab()
        try w.apply(.move(Lab.move(startedFrom: "ADMIN-WS01")))
        let enc = JSONEncoder()
        enc.outputFormatting = .sortedKeys
        let data = try enc.encode(w)
        let back = try JSONDecoder().decode(World.self, from: data)
        #expect(back == w)
        #expect(try enc.encode(back) == data)
        let steps: [Step] = [.signOn(user: "alice", host: "TestServer01", kind: .console), .advanceClock(.hours(10)),
                             .moveMany([Lab.move()])]
        #expect(try JSONDecoder().decode([Step].self, from: enc.encode(steps)) == steps)
    }

    @Test("Unknown hosts and users, or a user not signed on, are errors rather than outcomes")
    func requestErrors() throws {
        let w = World.contosoLab()
        #expect(throws: SimulationError.self) { try w.evaluate(Lab.move(to: "Nowhere")) }
        #expect(throws: SimulationError.self) { try w.evaluate(Lab.move(user: "mallory")) }
        #expect(throws: SimulationError.self) { try w.evaluate(Lab.move()) }
    }
}
