import Foundation
import Hosts
import MigrationRules
import Scenario
import Testing

/// Running scenarios: expectations are compared, mismatches reported, and the API works in code.
@Suite struct ScenarioRunTests {
    static let roundTrip = """
        name: round trip
        rules: [A6]
        directory:
          domains: [{name: contoso.com, netbios: CONTOSO}]
          users: [{name: alice}]
        hosts:
          - {name: TestServer01, vms: [VM1], local-groups: {Administrators: ['CONTOSO\\alice']},
             settings: {migration-enabled: true, use-any-network-for-migration: true}}
          - {name: TestServer02, local-groups: {Administrators: ['CONTOSO\\alice']},
             settings: {migration-enabled: true, use-any-network-for-migration: true}}
        steps:
          - sign-on: {user: alice, host: TestServer01}
          - move: {user: alice, on: TestServer01, vm: VM1, to: TestServer02}
          - move: {user: alice, on: TestServer01, vm: VM1, to: TestServer01}
            expect: {error: 0x8009030E, stage: source}
        """

    @Test func aCorrectScenarioPasses() throws {
        let result = try Scenario(yaml: Self.roundTrip).run()
        #expect(result.passed, "\(ReportFormatter.text(ScenarioBatchResult(results: [result], errors: [])))")
        #expect(result.steps.count == 3)
        #expect(result.steps[2].actual.status?.code == 0x8009_030E)
        #expect(result.steps[2].actual.message?.hasPrefix("Virtual machine migration operation failed at migration Source.\n") == true)
    }

    @Test func aWrongExpectationIsAMismatch() throws {
        let wrong = Self.roundTrip.replacingOccurrences(of: "expect: {error: 0x8009030E, stage: source}",
                                                         with: "expect: success")
        let result = try Scenario(yaml: wrong).run()
        #expect(!result.passed)
        #expect(result.mismatches == 1)
        let step = result.steps[2]
        #expect(!step.matched)
        #expect(step.mismatches.contains { $0.contains("expected success, got error") })
        let text = ReportFormatter.text(ScenarioBatchResult(results: [result], errors: []))
        #expect(text.contains("✗  3"))
        #expect(text.contains("expected: success"))
        #expect(text.contains("FAIL: 1 scenario, 3 steps, 1 mismatch"))
    }

    @Test func aWrongErrorCodeOrRuleIsAMismatch() throws {
        let wrongCode = Self.roundTrip.replacingOccurrences(of: "0x8009030E", with: "0x80090303")
        let r1 = try Scenario(yaml: wrongCode).run()
        #expect(r1.steps[2].mismatches.contains { $0.hasPrefix("error: expected 0x80090303") })
        let wrongRule = Self.roundTrip.replacingOccurrences(of: "stage: source}", with: "stage: source, rule: P4}")
        let r2 = try Scenario(yaml: wrongRule).run()
        #expect(r2.steps[2].mismatches.contains { $0.hasPrefix("rule: expected P4") })
    }

    @Test func builtInCode() throws {
        var scenario = try Scenario(yaml: Self.roundTrip.components(separatedBy: "steps:")[0] + "steps: []\n")
        scenario.append(.signOn(user: "alice", host: "TestServer01", method: .console, from: nil))
        scenario.append(.move(MoveSpec(user: "alice", startedOn: "TestServer01", vm: "VM1", destination: "TestServer02")))
        scenario.append(.move(MoveSpec(user: "alice", startedOn: "TestServer01", vm: "VM1", destination: "TestServer01")),
                        expect: .error(0x8009_030E, stage: "source"))
        let result = scenario.run()
        #expect(result.passed, "\(result.steps.map(\.mismatches))")

        var env = scenario.environment(afterSteps: 2)
        #expect(env.world.host("TestServer02")?.virtualMachine("VM1") != nil)
        let before = env
        let refused = env.apply(.move(MoveSpec(user: "alice", startedOn: "TestServer01", vm: "VM1", destination: "TestServer01")))
        #expect(refused.result == .error)
        #expect(env == before, "a refused action changes nothing")
    }

    @Test func jsonOutputRoundTrips() throws {
        let result = try Scenario(yaml: Self.roundTrip).run()
        let json = try ScenarioBatchResult(results: [result], errors: []).jsonString()
        #expect(json.contains("\"passed\" : true"))
        let decoded = try JSONDecoder().decode(ScenarioBatchResult.self, from: Data(json.utf8))
        #expect(decoded.results == [result])
    }
}
