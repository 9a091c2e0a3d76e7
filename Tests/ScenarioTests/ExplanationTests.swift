import Directory
import Foundation
import Hosts
import MigrationRules
import Scenario
import Testing

/// Explanations state facts of this world, and fixes leave out what is already in place (issue 14).
@Suite("Explanations and fixes from the state")
struct ExplanationTests {
    static func world(users: String = "[{name: Administrator, groups: [Domain Admins]}, {name: alice}, {name: dave}]",
                      groups: String = "[]", ts01: String = "", ts02: String = "", computers: String = "[]",
                      auth: String = "CredSSP", os2: String = "2012r2") throws -> SimulatedEnvironment {
        let yaml = """
            name: t
            directory:
              domains: [{name: contoso.com, netbios: CONTOSO}]
              users: \(users)
              groups: \(groups)
              computers: \(computers)
            hosts:
              - {name: TestServer01, addresses: [192.168.10.1], vms: [VM1], local-groups: {Hyper-V Administrators: ['CONTOSO\\alice', 'CONTOSO\\dave']},
                 settings: {migration-enabled: true, migration-networks: [192.168.10.0/24], authentication-type: \(auth)}\(ts01)}
              - {name: TestServer02, os: \(os2), addresses: [192.168.10.2], local-groups: {Hyper-V Administrators: ['CONTOSO\\alice', 'CONTOSO\\dave']},
                 settings: {migration-enabled: true, migration-networks: [192.168.10.0/24], authentication-type: \(auth)}\(ts02)}
              - {name: AdminPC, hyper-v: false, addresses: [192.168.10.50]}
            steps: []
            """
        return try Scenario(yaml: yaml, file: "t.yaml").initialEnvironment()
    }

    static let users = "[{name: Administrator, groups: [Domain Admins]}, {name: alice}, {name: dave, groups: [Hyper-V Tier2]}]"

    func signOn(_ env: inout SimulatedEnvironment, _ user: String, _ host: String, _ kind: SignOnKind = .console) {
        _ = env.apply(.signOn(user: user, host: host, method: kind, from: nil))
    }

    @Test("A6 is told only when the VM really came from the host the user moves it back from")
    func roundTripOnlyWhenThereWasOne() throws {
        var env = try Self.world()
        signOn(&env, "alice", "TestServer02")
        // VM1 never left TestServer01: a plain A1, not the round trip.
        let plain = env.diagnose(MoveSpec(user: "alice", startedOn: "TestServer02", vm: "VM1", destination: "TestServer02"))
        let a1 = try #require(plain.blockers.first)
        #expect(a1.rule == "A1")
        #expect(!a1.rulesExercised.contains("A6"))
        #expect(!(a1.explanation ?? "").contains("round trip"), "\(a1.explanation ?? "")")

        // The article's round trip: moved from TestServer01 (signed on there), then moved back from that sign-on.
        var trip = try Self.world()
        signOn(&trip, "alice", "TestServer01")
        #expect(trip.apply(.move(MoveSpec(user: "alice", vm: "VM1", destination: "TestServer02"))).result == .success)
        let back = trip.diagnose(MoveSpec(user: "alice", startedOn: "TestServer01", vm: "VM1", destination: "TestServer01"))
        let b = try #require(back.blockers.first)
        #expect(b.rulesExercised.contains("A6"))
        #expect((b.explanation ?? "").contains("VM1 was moved from TestServer01 to TestServer02"), "\(b.explanation ?? "")")
        #expect(back.plan?.succeeds == true)
    }

    @Test("A4 through a nested group names the path and removes the membership that exists")
    func nestedProtectedUsers() throws {
        var env = try Self.world(users: Self.users,
                                 groups: "[{name: Hyper-V Tier2}, {name: Protected Users, members: [Hyper-V Tier2]}]")
        signOn(&env, "dave", "TestServer01")
        let d = env.diagnose(MoveSpec(user: "dave", vm: "VM1", destination: "TestServer02"))
        let a4 = try #require(d.blockers.first { $0.rule == "A4" })
        #expect((a4.explanation ?? "").contains("dave is in Hyper-V Tier2, which is in Protected Users"), "\(a4.explanation ?? "")")
        #expect(a4.fixes.contains { $0.hasPrefix("Remove-ADGroupMember -Identity 'Hyper-V Tier2' -Members 'dave'") }, "\(a4.fixes)")
        #expect(!a4.fixes.contains { $0.contains("-Identity 'Protected Users' -Members 'dave'") }, "\(a4.fixes)")
        #expect(a4.fixes.contains("or with samba-tool: samba-tool group removemembers 'Hyper-V Tier2' 'dave'"))
        #expect(d.plan?.succeeds == true)
    }

    @Test("A2 fixes add only the missing entries; an empty list is called empty; A3 starts with the purge")
    func delegationFixesFromTheState() throws {
        // Live move delegated already; a storage move also needs cifs.
        var env = try Self.world(computers: "[{name: TestServer01, delegation: any-protocol, allowed-to-delegate-to: ['Microsoft Virtual System Migration Service/TestServer02.contoso.com', 'Microsoft Virtual System Migration Service/TestServer02']}]",
                                 auth: "Kerberos")
        signOn(&env, "alice", "AdminPC")
        let d = env.diagnose(MoveSpec(user: "alice", startedOn: "AdminPC", vm: "VM1", destination: "TestServer02", kind: .both))
        let a2 = try #require(d.blockers.first { $0.rule == "A2" })
        #expect(!a2.fixes.contains { $0.contains("Microsoft Virtual System Migration Service/TestServer02") }, "\(a2.fixes)")
        #expect(a2.fixes.contains { $0.contains("'cifs/TestServer02.contoso.com'") }, "\(a2.fixes)")
        #expect(!a2.fixes.contains { $0.contains("TrustedToAuthForDelegation") }, "already any-protocol: \(a2.fixes)")
        #expect((a2.explanation ?? "").contains("may delegate only to 'Microsoft Virtual System Migration Service/TestServer02.contoso.com'"))
        #expect(d.plan?.succeeds == true)

        var empty = try Self.world(computers: "[{name: TestServer01, delegation: kerberos-only}]", auth: "Kerberos")
        signOn(&empty, "alice", "TestServer01")
        let e = try #require(empty.diagnose(MoveSpec(user: "alice", vm: "VM1", destination: "TestServer02")).blockers.first)
        #expect(e.rule == "A2")
        #expect((e.explanation ?? "").contains("list is empty"), "\(e.explanation ?? "")")
        #expect(!(e.explanation ?? "").contains("do not include"))
    }

    @Test("A3 with nothing to replicate starts with the purge, not 'then'")
    func lateDelegationPurgeFirst() throws {
        var env = try Self.world(auth: "Kerberos")
        signOn(&env, "alice", "TestServer01")
        // The source fetches a ticket while trying, then the delegation is added on its own logon DC.
        _ = env.apply(.move(MoveSpec(user: "alice", vm: "VM1", destination: "TestServer02")))
        _ = env.apply(.delegation(DelegationChange(operation: .add, dc: "DC01", actingUser: "Administrator", computer: "TestServer01",
                                                   services: ["Microsoft Virtual System Migration Service/TestServer02.contoso.com"])))
        let d = env.diagnose(MoveSpec(user: "alice", vm: "VM1", destination: "TestServer02"))
        let a3 = try #require(d.blockers.first)
        #expect(a3.rule == "A3")
        let move = try env.request(for: MoveSpec(user: "alice", vm: "VM1", destination: "TestServer02"))
        let raw = try #require(try env.world.evaluate(move).failure)
        #expect(raw.fixes.first?.hasPrefix("Purge the source's tickets") == true, "\(raw.fixes)")
        #expect(d.plan?.steps.map(\.rule) == [.a3])
    }

    @Test("P4 makes every other fix moot: 'impossible while P4'")
    func impossibleWhileP4() throws {
        var env = try Self.world(auth: "Kerberos", os2: "2012")
        signOn(&env, "alice", "TestServer01")
        let d = env.diagnose(MoveSpec(user: "alice", vm: "VM1", destination: "TestServer02"))
        let a2 = try #require(d.blockers.first { $0.rule == "A2" })
        #expect(a2.fixes.allSatisfy { $0.hasPrefix("Impossible while P4") }, "\(a2.fixes)")
        #expect(d.plan?.impossible.map(\.rule) == [.p4])
        #expect(ReportFormatter.text(d).contains("Impossible while P4:"))
    }

    @Test("P2 names the acting user as NETBIOS\\user")
    func p2NamesNetBIOSUser() throws {
        var env = try Self.world()
        let o = env.apply(.delegation(DelegationChange(operation: .add, dc: "DC01", actingUser: "alice", computer: "TestServer01",
                                                       services: ["cifs/TestServer02"])))
        #expect(o.rule == "P2")
        #expect((o.explanation ?? "").contains("CONTOSO\\alice is not a member of Domain Admins"), "\(o.explanation ?? "")")
    }
}
