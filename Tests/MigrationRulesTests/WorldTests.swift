import Directory
import Foundation
import Hosts
import MigrationRules
import Testing

@Suite("World building, delayed replication, tickets")
struct WorldTests {
    @Test("A3 with delayed replication: the clock delivers the change, a new ticket makes it count")
    func a3DelayedReplication() throws {
        var w = try Lab.kerberosLab()
        w.directory.replicationDelay = .minutes(15)
        try w.apply(.addDelegation(computer: "TestServer01", services: Lab.migrationTo02, by: "alice", dc: "DC02"))
        let move = Lab.move(startedFrom: "ADMIN-WS01")
        try w.apply(.advanceClock(.minutes(14)))
        #expect(w.directory.computer("TestServer01", on: "DC01")?.allowedToDelegateTo == [])
        try w.apply(.advanceClock(.minutes(1)))
        #expect(w.directory.computer("TestServer01", on: "DC01")?.allowedToDelegateTo == Lab.migrationTo02)
        #expect(try w.evaluate(move).failure?.rule == .a3, "replicated, but the boot ticket is old")
        try w.apply(.purgeTickets(host: "TestServer01"))
        #expect(try w.evaluate(move).isSuccess)
    }

    @Test("Tickets expire after 10 hours and record their issuing DC")
    func ticketLifetime() throws {
        var w = World.contosoLab()
        let t = try #require(w.host("TestServer03")?.tickets.tgt)
        #expect(t.issuedBy == "dc02")
        #expect(t.expiresAt == SimTime(seconds: 36_000))
        w.advance(by: .hours(10))
        #expect(w.host("TestServer03")?.tickets.tgt == nil)
    }

    @Test("Hosts from an imported LDIF directory")
    func hostsFromLDIF() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fixtures/ldif/contoso.ldif").path
        let directory = try Directory.importLDIF(String(contentsOfFile: path, encoding: .utf8), file: "contoso.ldif")
        var w = World(directory: directory)
        let added = try w.addHostsForComputers()
        #expect(added == ["ADMIN-WS01", "TestServer01", "TestServer02", "TestServer03", "FabServer01"])
        #expect(w.host("TestServer03")?.os == .ws2016)
        #expect(w.host("ADMIN-WS01")?.hypervisorInstalled == false)
        #expect(w.host("TestServer02")?.tickets.tgt?.delegation.kind == .constrainedKerberosOnly)
        #expect(w.host("TestServer01")?.migration.enabled == false, "defaults: migration off")
    }

    @Test("The synthetic benchmark world decides its standard moves as successes")
    func synthetic() throws {
        let w = World.synthetic(hostCount: 10)
        #expect(w.hosts.count == 10)
        for i in 0..<10 {
            #expect(try w.evaluate(World.syntheticMove(i, hostCount: 10)).isSuccess)
        }
    }

    @Test("Refused steps leave the world unchanged")
    func refusedSteps() throws {
        var w = World.contosoLab()
        let before = w
        #expect(throws: SimulationError.self) { try w.apply(.createVM(host: "ADMIN-WS01", name: "X")) }
        #expect(throws: SimulationError.self) { try w.apply(.createVM(host: "TestServer01", name: "vm1")) }
        #expect(throws: SimulationError.self) { try w.apply(.replicate(from: "DC01", to: "FAB-DC01")) }
        #expect(throws: SimulationError.self) { try w.apply(.signOn(user: "nobody", host: "TestServer01", kind: .console)) }
        #expect(throws: SimulationError.self) { try w.apply(.removeMigrationNetwork(host: "TestServer01", subnet: "10.9.9.0/24")) }
        #expect(w == before)
    }
}
