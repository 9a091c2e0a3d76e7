import Directory
import Foundation
import Hosts
import MigrationRules
import Scenario
import Testing

/// Scenario steps for group membership, the sensitive flag and Credential Guard; per-link
/// replication delays; choosing a session; new-vm then a move without `from`; `os` from the
/// LDIF's `operatingSystem` (issue 14).
@Suite("Scenario format: account steps, link delays, sessions, LDIF os")
struct FormatGapTests {
    static let base = """
        name: gaps
        directory:
          domains: [{name: contoso.com, netbios: CONTOSO}]
          dcs: [{name: DC01, domain: contoso.com}, {name: DC02, domain: contoso.com}]
          replication-delays: [{from: DC01, to: DC02, delay: 15m}]
          users: [{name: Administrator, groups: [Domain Admins]}, {name: alice}]
          groups: [{name: Tier2, members: [alice]}]
        hosts:
          - {name: TestServer01, addresses: [192.168.10.1], local-groups: {Hyper-V Administrators: ['CONTOSO\\alice']},
             settings: {migration-enabled: true, migration-networks: [192.168.10.0/24]}}
          - {name: TestServer02, logon-dc: DC02, addresses: [192.168.10.2], local-groups: {Hyper-V Administrators: ['CONTOSO\\alice']},
             settings: {migration-enabled: true, migration-networks: [192.168.10.0/24]}}
        steps:
        """

    func run(_ steps: String) throws -> ScenarioResult {
        try Scenario(yaml: Self.base + "\n" + steps, file: "gaps.yaml").run()
    }

    @Test("Group membership, sensitive flag and Credential Guard steps change the outcome")
    func accountSteps() throws {
        let r = try run("""
              - new-vm: {host: TestServer01, name: VM9}
              - sign-on: {user: alice, host: TestServer01}
              - add-adgroupmember: {group: Protected Users, member: Tier2, dc: DC01}
              - move: {user: alice, vm: VM9, to: TestServer02}
                expect: {error: 0x8009030E, rule: A4}
              - remove-adgroupmember: {group: Protected Users, member: Tier2, dc: DC01}
              - set-adaccountcontrol: {user: alice, account-not-delegated: true}
              - move: {user: alice, vm: VM9, to: TestServer02}
                expect: {error: 0x8009030E, rule: A4}
              - set-adaccountcontrol: {user: alice, account-not-delegated: false}
              - set-credential-guard: {host: TestServer01, enabled: true}
              - move: {user: alice, vm: VM9, to: TestServer02}
                expect: {error: 0x8009030E, rule: A7}
              - set-credential-guard: {host: TestServer01, enabled: false}
              - move: {user: alice, vm: VM9, to: TestServer02}
            """)
        #expect(r.passed, "\(ReportFormatter.text(ScenarioBatchResult(results: [r], errors: []), verbose: true))")
    }

    @Test("A move picks the named session among several on one host")
    func sessionChoice() throws {
        let r = try run("""
              - new-vm: {host: TestServer01, name: VM9}
              - sign-on: {user: alice, host: TestServer01, method: remote-shell-kerberos}
              - sign-on: {user: alice, host: TestServer01, method: console}
              - move: {user: alice, vm: VM9, to: TestServer02, session: remote-shell-kerberos}
                expect: {error: 0x8009030E, rule: A1}
              - move: {user: alice, vm: VM9, to: TestServer02, session: console}
            """)
        #expect(r.passed, "\(ReportFormatter.text(ScenarioBatchResult(results: [r], errors: []), verbose: true))")
    }

    @Test("A per-link delay delivers changes on that link only after it")
    func linkDelay() throws {
        let s = try Scenario(yaml: Self.base + "\n" + """
              - add-adgroupmember: {group: Protected Users, member: alice, dc: DC01}
              - advance-clock: 10m
              - advance-clock: 6m
            """, file: "gaps.yaml")
        let pu = PrincipalRef(domain: "contoso.com", name: "Protected Users")
        let alice = PrincipalRef(domain: "contoso.com", name: "alice")
        #expect(s.environment(afterSteps: 2).world.directory.isMember(alice, of: pu, on: "DC02") == false)
        #expect(s.environment(afterSteps: 3).world.directory.isMember(alice, of: pu, on: "DC02") == true)
        do {
            _ = try Scenario(yaml: Self.base.replacingOccurrences(of: "to: DC02, delay: 15m", with: "to: DC09, delay: 15m") + "\n  []",
                             file: "bad.yaml")
            Issue.record("a link to an unknown DC was accepted")
        } catch {
            #expect(error.line == 5, "\(error)")
        }
    }

    @Test("os comes from the LDIF account's operatingSystem; a contradicting os is an error")
    func osFromLDIF() throws {
        let ldif = TestPaths.root.appendingPathComponent("Fixtures/ldif/samba-contoso-ldbsearch.ldif").path
        func yaml(_ os: String) -> String {
            "name: x\ndirectory: {ldif: '\(ldif)'}\nhosts:\n  - {name: TestServer02\(os)}\nsteps: []\n"
        }
        let s = try Scenario(yaml: yaml(""), file: "x.yaml")
        #expect(s.world.host("TestServer02")?.os == .ws2012, "operatingSystem: Windows Server 2012 Datacenter")
        #expect(throws: ScenarioError.self) { try Scenario(yaml: yaml(", os: 2012r2"), file: "x.yaml") }
        #expect(try Scenario(yaml: yaml(", os: 2012"), file: "x.yaml").world.host("TestServer02")?.os == .ws2012)
    }

    @Test("new-vm then a move that leaves out from")
    func newVMThenMove() throws {
        let r = try run("""
              - new-vm: {host: TestServer02, name: Fresh}
              - sign-on: {user: alice, host: TestServer02}
              - move: {user: alice, vm: Fresh, to: TestServer01}
            """)
        #expect(r.passed, "\(ReportFormatter.text(ScenarioBatchResult(results: [r], errors: []), verbose: true))")
    }
}
