import ClusterAudit
import Directory
import Foundation
import Hosts
import MigrationRules
import Testing

@Suite struct ClusterAuditTests {
    static let labHosts = ["TestServer01", "TestServer02", "TestServer03", "FabServer01"]

    static func index(_ audit: ClusterAudit, _ name: String) throws -> Int {
        try #require(audit.hosts.firstIndex(of: name))
    }

    /// Applies the audit's delegation fixes in the simulator (as a Domain Admin of each account's
    /// domain), replicates and purges every host's tickets.
    static func applyDelegationFixes(_ audit: ClusterAudit, to world: inout World, admin: (String) -> String) throws {
        for fix in audit.delegationFixes {
            if !fix.add.isEmpty {
                try world.apply(.addDelegation(computer: fix.account, services: fix.add, by: admin(fix.domain)))
            }
            if fix.protocolTransition {
                try world.apply(.setDelegationKind(computer: fix.account, kind: .constrainedAnyProtocol, by: admin(fix.domain)))
            }
        }
        try world.apply(.replicateAll)
        for h in world.allHosts { try world.apply(.purgeTickets(host: h.name)) }
    }

    @Test func labVerdictsNameTheRules() throws {
        let world = World.contosoLab()
        let audit = try ClusterAudit.run(world, options: .init(user: "alice", hosts: Self.labHosts))
        #expect(audit.hosts == Self.labHosts)
        #expect(audit.decisions == 4 * 4 * 3)
        let t1 = try Self.index(audit, "TestServer01"), t2 = try Self.index(audit, "TestServer02")
        let t3 = try Self.index(audit, "TestServer03"), fab = try Self.index(audit, "FabServer01")
        // CredSSP from a console sign-on on the source: 01 → 02 works.
        #expect(audit.verdict(.liveCredSSP, source: t1, destination: t2)?.first == nil)
        // Kerberos without delegation: A2; across domains A5 comes first.
        #expect(audit.verdict(.liveKerberos, source: t1, destination: t2)?.first == .a2)
        #expect(audit.verdict(.storageKerberos, source: t1, destination: t2)?.first == .a2)
        #expect(audit.verdict(.liveKerberos, source: t1, destination: fab)?.first == .a5)
        // 2016 → 2012 R2 is down-level (P4) for live moves, not for storage moves.
        #expect(audit.verdict(.liveCredSSP, source: t3, destination: t1)?.all.contains(.p4) == true)
        #expect(audit.verdict(.storageCredSSP, source: t3, destination: t1)?.first == nil)
        #expect(audit.verdict(.liveCredSSP, source: t1, destination: t1) == nil)
        #expect(audit.blockedVerdicts > 0)
        // The fix list: delegation entries for the Kerberos pairs inside contoso.com.
        let f1 = try #require(audit.delegationFixes.first { $0.account == "TestServer01" })
        #expect(f1.add.contains("Microsoft Virtual System Migration Service/TestServer02.contoso.com"))
        #expect(f1.add.contains("cifs/TestServer02"))
        #expect(!f1.add.contains { $0.contains("FabServer01") }, "A5 blocks cross-domain delegation; no entry for it")
        #expect(!audit.delegationFixes.contains { $0.account == "FabServer01" }, "A5 blocks every Kerberos move from it")
        #expect(audit.ruleFixes.contains { $0.rule == .p4 })
        #expect(audit.ruleFixes.contains { $0.rule == .a5 })
        #expect(audit.text.contains("TestServer01"))
        #expect(audit.delegationCommands.contains { $0.hasPrefix("Set-ADComputer -Identity TestServer01 -Add") })
    }

    @Test func entriesInPlaceAreNotRepeatedAndFixesWork() throws {
        var world = World.contosoLab()
        try world.apply(.addDelegation(computer: "TestServer01",
                                       services: ["Microsoft Virtual System Migration Service/TestServer02.contoso.com"], by: "alice"))
        try world.apply(.replicateAll)
        try world.apply(.purgeTickets(host: "TestServer01"))
        // Moves started from a remote shell on the source: A2b for the 2016 host.
        let options = ClusterAudit.Options(user: "alice", signedOn: .remoteShellKerberos, hosts: Self.labHosts)
        let audit = try ClusterAudit.run(world, options: options)
        let t1 = try Self.index(audit, "TestServer01"), t2 = try Self.index(audit, "TestServer02")
        #expect(audit.verdict(.liveKerberos, source: t1, destination: t2)?.first == nil)
        let f1 = try #require(audit.delegationFixes.first { $0.account == "TestServer01" })
        #expect(!f1.add.contains { $0.hasPrefix("Microsoft Virtual System Migration Service/TestServer02") }, "already in place")
        #expect(f1.add.contains("cifs/TestServer02.contoso.com"), "storage moves still need cifs")
        #expect(!f1.protocolTransition, "2012 R2 needs no protocol transition")
        let f3 = try #require(audit.delegationFixes.first { $0.account == "TestServer03" })
        #expect(f3.protocolTransition, "2016 reached over WinRM needs protocol transition")

        // Applying exactly the printed delegation fixes leaves no Kerberos verdict blocked by A2/A2b/A3.
        try Self.applyDelegationFixes(audit, to: &world) { _ in "CONTOSO\\alice" }
        let after = try ClusterAudit.run(world, options: options)
        #expect(after.delegationFixes.isEmpty)
        let n = after.hosts.count
        var unblocked = 0
        for v in [ClusterAudit.Variant.liveKerberos, .storageKerberos] {
            for s in 0..<n {
                for d in 0..<n where d != s {
                    let before = try #require(audit.verdict(v, source: s, destination: d))
                    let now = try #require(after.verdict(v, source: s, destination: d))
                    // Delegation is left alone only where A4, A5 or P4 block the move anyway.
                    let hopeless = now.all.contains(.a4) || now.all.contains(.a5) || now.all.contains(.p4)
                    #expect(hopeless || !(now.all.contains(.a2) || now.all.contains(.a2b) || now.all.contains(.a3)),
                            "\(v) \(after.hosts[s]) → \(after.hosts[d]): \(Array(now.all))")
                    let delegationOnly = RuleSet(before.all.filter { $0 != .a2 && $0 != .a2b })
                    if !before.all.isEmpty && delegationOnly.isEmpty {
                        #expect(now.first == nil, "\(v) \(after.hosts[s]) → \(after.hosts[d]) was blocked only by delegation")
                        unblocked += 1
                    }
                }
            }
        }
        #expect(unblocked > 0)
    }

    /// A generated cluster: each host delegates to the next one only.
    @Test func syntheticClusterNeedsEveryOtherPair() throws {
        let n = 30
        var world = World.synthetic(hostCount: n)
        let audit = try ClusterAudit.run(world, options: .init(user: "admin"))
        #expect(audit.hosts.count == n)
        let k = ClusterAudit.Variant.liveKerberos
        #expect(audit.summary(k).works == n, "only i → i+1 is delegated")
        #expect(audit.summary(k).byRule.map(\.0) == [.a2])
        #expect(audit.delegationFixes.count == n)
        #expect(audit.delegationFixes.allSatisfy { $0.add.count == 4 * (n - 2) },
                "migration and cifs to the n-2 hosts not delegated yet, both name forms")
        try Self.applyDelegationFixes(audit, to: &world) { _ in "BENCH\\admin" }
        let after = try ClusterAudit.run(world, options: .init(user: "admin"))
        #expect(after.summary(k).works == n * (n - 1))
        #expect(after.summary(.storageKerberos).works == n * (n - 1))
        #expect(after.blockedVerdicts == 0)
        #expect(after.text.contains("nothing to fix"))
    }

    @Test func reportsAreWellFormed() throws {
        let audit = try ClusterAudit.run(World.contosoLab(), options: .init(user: "alice", hosts: Self.labHosts))
        let data = Data(audit.json.utf8)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let pairs = try #require(object["pairs"] as? [[String: Any]])
        #expect(pairs.count == 12)
        let first = try #require(pairs.first { $0["source"] as? String == "TestServer01" && $0["destination"] as? String == "TestServer02" })
        let lk = try #require(first["live-kerberos"] as? [String: Any])
        #expect(lk["works"] as? Bool == false)
        #expect(lk["rules"] as? [String] == ["A2"])
        #expect((object["delegation"] as? [[String: Any]])?.isEmpty == false)
        let html = audit.html
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.contains("title=\"TestServer01 → TestServer02: blocked by A2 (Kerberos needs constrained delegation)\""))
        #expect(html.contains("<h2>live, CredSSP</h2>"))
        #expect(!html.contains("<script"))
    }

    @Test func unknownNamesAreErrors() {
        #expect(throws: SimulationError.self) { try ClusterAudit.run(World.contosoLab(), options: .init(user: "nobody")) }
        #expect(throws: SimulationError.self) { try ClusterAudit.run(World.contosoLab(), options: .init(user: "alice", hosts: ["NoSuchHost"])) }
        #expect(throws: SimulationError.self) { try ClusterAudit.run(World.contosoLab(), options: .init(user: "alice", from: "Nowhere")) }
    }
}
