import Foundation
import RealScenario
import Scenario
import TestRealm
import Testing

@Suite("Scenarios against a real KDC and real processes")
struct RealRunTests {
    static let seedText = """
        Virtual machine migration operation failed at migration Source.
        Failed to establish a connection with host TestServer02: No credentials are available in the security package (0x8009030E).
        """

    /// Runs a fixture through the runner with the built `migauth`; the real side must set up.
    static func run(_ fixture: String) async throws -> RealScenarioReport {
        let scenario = try Scenario.load(file: RealTestPaths.fixture(fixture))
        let report = await RealScenarioRunner(executable: RealTestPaths.migauth).run(scenario)
        #expect(report.error == nil, "\(report.error ?? "")")
        return report
    }

    @Test("host TGTs last 120 s only where the model lets one end (advance-clock), else the model's 10 hours")
    func hostTicketLifetimePerScenario() throws {
        let expiring = try Scenario.load(file: RealTestPaths.fixture("a3-expiry-without-purge.yaml"))
        #expect(RealScenarioRunner.hostTicketLifetime(for: expiring) == RealScenarioRunner.hostTicketLifetime)
        // Several moves at once, no clock: a loaded machine must not see the host's ticket end mid-scenario.
        let concurrent = try Scenario.load(file: RealTestPaths.fixture("real-p1-n1-n2-kerberos.yaml"))
        #expect(RealScenarioRunner.hostTicketLifetime(for: concurrent) == .seconds(10 * 3600))
        #expect(concurrent.world.ticketLifetime.seconds == 10 * 3600)
    }

    @Test("Kerberos moves started remotely: the real KDC agrees with the simulation step by step (A2, A3, A4)")
    func kerberosRemoteMoves() async throws {
        let report = try await Self.run("real-a2-a3-a4-kerberos-remote-move.yaml")
        let moves = report.steps.filter { $0.mode == .compared }
        // Steps 3, 5, 7, 8, 10, 12 are the moves; each ran for real.
        #expect(moves.map(\.index) == [3, 5, 7, 8, 10, 12])
        #expect(moves.map { $0.real?.result } == ["error", "error", "success", "error", "success", "error"])
        #expect(moves.map { $0.simulated.result } == ["error", "error", "success", "error", "success", "error"])
        #expect(moves.allSatisfy { $0.mismatches.isEmpty }, "\(moves.map(\.mismatches))")
        // The seed's remote-management error, exactly, from the real KDC's refusal.
        let first = try #require(moves.first)
        #expect(first.real?.status == "0x8009030E")
        #expect(first.real?.text == Self.seedText)
        #expect(report.simulatedOnly.isEmpty)
    }

    @Test("the real daemons decide P1 (allowed users), N1 (incoming networks) and N2 (queueing) for Kerberos moves")
    func daemonsDecidePermissionsNetworksAndConcurrency() async throws {
        let report = try await Self.run("real-p1-n1-n2-kerberos.yaml")
        let steps = Dictionary(uniqueKeysWithValues: report.steps.map { ($0.index, $0) })
        // P1 at the destination: the daemon refuses with E_ACCESSDENIED, naming the user as Windows does.
        #expect(steps[3]?.mode == .compared)
        #expect(steps[3]?.real?.status == "0x80070005")
        #expect(steps[3]?.real?.text?.hasPrefix("Virtual machine migration operation failed at migration Destination.") == true)
        #expect(steps[3]?.real?.text?.contains("User 'CONTOSO\\bob'") == true, "\(steps[3]?.real?.text ?? "")")
        #expect(steps[3]?.mismatches == [])
        #expect(steps[5]?.real?.result == "success")
        // N1: refused on the real socket, with the refusal read (not a reset: 0x80072746).
        #expect(steps[7]?.real?.result == "error")
        #expect(steps[7]?.real?.status == "0x8007274D")
        #expect(steps[7]?.mismatches == [])
        #expect(steps[9]?.real?.result == "success")
        // N2: three at once with a limit of 2 — one waited, all moved.
        #expect(steps[10]?.real?.result == "queued")
        #expect(steps[10]?.mismatches == [])
    }

    @Test("A2b on a 2016 source reached remotely: protocol transition (S4U2Self) refused with Kerberos only, allowed with any protocol")
    func protocolTransition() async throws {
        let report = try await Self.run("a2b-protocol-transition-2016.yaml")
        let moves = report.steps.filter { $0.mode == .compared }
        #expect(moves.map { $0.real?.result } == ["error", "error", "success", "error", "success"])
        #expect(moves.allSatisfy { $0.mismatches.isEmpty }, "\(moves.map(\.mismatches))")
        // Refused by the real KDC, not by anything local.
        try #require(moves.count == 5)
        #expect(moves[0].real?.detail?.contains("KDC can't fulfill requested option") == true, "\(moves[0].real?.detail ?? "")")
        // The console move goes through the daemons (no reason), the remote ones through S4U2Self.
        #expect(moves[2].reason == nil)
        #expect(moves[4].reason?.hasPrefix("A2b") == true)
    }

    @Test("A6 for real: CredSSP sign-on on TestServer01 → 02 works, back from it fails naming TestServer01, from 02 works")
    func credSSPRoundTrip() async throws {
        let report = try await Self.run("a6-round-trip-testserver01-testserver02.yaml")
        let moves = report.steps.filter { $0.mode == .compared }
        #expect(moves.map(\.index) == [2, 3, 5])
        #expect(moves.map { $0.real?.result } == ["success", "error", "success"])
        #expect(moves.map { $0.simulated.result } == ["success", "error", "success"])
        #expect(moves.allSatisfy { $0.mismatches.isEmpty }, "\(moves.map(\.mismatches))")
        // The way back, from the TestServer01 sign-on: the source (TestServer02) has no credentials.
        try #require(moves.count == 3)
        #expect(moves[1].real?.status == "0x8009030E")
        #expect(moves[1].real?.text == Self.seedText.replacingOccurrences(of: "TestServer02", with: "TestServer01"))
        #expect(moves[1].simulated.text == moves[1].real?.text)
        #expect(report.simulatedOnly.isEmpty)
    }

    @Test("A1 for real: a CredSSP source refuses moves from a workstation, the destination and a Kerberos shell; a CredSSP shell and the console work")
    func credSSPNeedsSignOnAtSource() async throws {
        let report = try await Self.run("a1-credssp-needs-sign-on-at-source.yaml")
        let moves = report.steps.filter { $0.mode == .compared }
        #expect(moves.map { $0.real?.result } == ["error", "error", "error", "success", "error", "success"])
        #expect(moves.allSatisfy { $0.mismatches.isEmpty }, "\(moves.map(\.mismatches))")
        // From the workstation AdminPC: the seed's two lines, naming the destination, from the real daemon.
        let workstation = try #require(moves.first)
        #expect(workstation.index == 2)
        #expect(workstation.real?.status == "0x8009030E")
        #expect(workstation.real?.text == Self.seedText)
        #expect(workstation.real?.detail?.contains("rule A1") == true, "\(workstation.real?.detail ?? "")")
        #expect(report.simulatedOnly.isEmpty)
    }

    @Test("CredSSP sources for real: P1 at the destination after CredSSP, A4 protected user, N1, a restart wipes the shell")
    func credSSPSources() async throws {
        let report = try await Self.run("real-credssp-p1-a4-n1-sign-ons.yaml")
        let moves = report.steps.filter { $0.mode == .compared }
        #expect(moves.map(\.index) == [2, 4, 7, 9, 12, 14, 17])
        #expect(moves.map { $0.real?.status } == ["0x80070005", "0x8009030E", "0x8007274D", nil, "0x8009030E", nil, nil])
        #expect(moves.allSatisfy { $0.mismatches.isEmpty }, "\(moves.map(\.mismatches))")
        try #require(moves.count == 7)
        #expect(moves[1].real?.detail?.contains("rule A4") == true, "\(moves[1].real?.detail ?? "")")
        #expect(report.simulatedOnly.isEmpty)
    }

    @Test("P4 for real: the 2012 destination's daemon refuses a VM from 2012 R2 with the simulator's text and code")
    func downLevelMoveRefusedByTheDestination() async throws {
        let report = try await Self.run("p4-no-down-level-moves.yaml")
        let moves = report.steps.filter { $0.mode == .compared }
        #expect(moves.map(\.index) == [2, 4])
        #expect(moves.map { $0.real?.result } == ["success", "error"])
        try #require(moves.count == 2)
        #expect(moves[1].real?.status == "0x80070032")
        #expect(moves[1].real?.text == moves[1].simulated.text)
        #expect(moves[1].real?.text?.hasPrefix("Virtual machine migration operation failed at migration Destination.") == true)
        #expect(moves[1].real?.rules == ["P4"], "\(moves[1].real?.detail ?? "")")
        #expect(moves.allSatisfy { $0.mismatches.isEmpty && $0.unmetExpectations.isEmpty })
        #expect(report.simulatedOnly.isEmpty)
    }

    @Test("`migauth scenario run --real --json`: SIM vs REAL per step, exit 0 when they agree; multi-domain steps run for real")
    func commandLine() async throws {
        let realm = try await TestRealm.start()   // only for its process runner (clean signal mask, own thread)
        let run = await Result(catching: {
            try await realm.run(RealTestPaths.migauth,
                                ["scenario", "run", "--real", "--json",
                                 RealTestPaths.fixture("a6-round-trip-testserver01-testserver02.yaml"),
                                 RealTestPaths.fixture("a5-constrained-delegation-stays-in-its-domain.yaml")], check: false)
        })
        await realm.shutdown()
        let r = try run.get()
        #expect(r.exitStatus == 0, "\(r)")
        let batch = try JSONDecoder().decode(RealBatchReport.self, from: Data(r.standardOutput.utf8))
        #expect(batch.scenarios.count == 2)
        #expect(batch.compared == 5, "not set up: \(batch.scenarios.compactMap(\.error))")
        #expect(batch.mismatches == 0)
        // A5 runs for real across two realms (one per domain, the two-way trust as cross-realm krbtgt).
        let a5 = try #require(batch.scenarios.last)
        #expect(a5.simulatedOnly.isEmpty)
        #expect(a5.realmCount == 2)
        #expect(batch.unmetExpectations == 0)
        #expect(batch.summary.hasPrefix("REAL: 2 scenarios, 5 steps compared, 0 mismatches, 0 expectations not met, 0 steps simulated only; set-up "))
    }

    @Test("a deliberately wrong expectation fails `--real` (rc 1) with a clear line, though SIM and REAL agree")
    func wrongExpectationFailsRealRun() async throws {
        // The A6 fixture with one wrong `expect`: the first move works (SIM and REAL), the file says E_ACCESSDENIED.
        let text = try String(contentsOfFile: RealTestPaths.fixture("a6-round-trip-testserver01-testserver02.yaml"), encoding: .utf8)
        let move = "    move: {user: alice, on: TestServer01, vm: VM1, to: TestServer02}\n"
        #expect(text.contains(move))
        let wrong = text.replacingOccurrences(of: move, with: move + "    expect: {error: 0x80070005}\n")
        let realm = try await TestRealm.start()   // its process runner, and a temporary directory for the file
        let file = realm.directory + "/wrong-expectation.yaml"
        let run = await Result(catching: {
            try wrong.write(toFile: file, atomically: true, encoding: .utf8)
            let simulated = try await realm.run(RealTestPaths.migauth, ["scenario", "run", file], check: false)
            let real = try await realm.run(RealTestPaths.migauth, ["scenario", "run", "--real", file], check: false)
            return (simulated, real)
        })
        await realm.shutdown()
        let (simulated, real) = try run.get()
        #expect(simulated.exitStatus == 1, "\(simulated)")
        #expect(real.exitStatus == 1, "\(real)")
        let out = real.standardOutput
        #expect(out.contains("✗ A6"), "\(out)")
        #expect(out.contains("✗ expectation not met (REAL): result: expected error, got success — the file expects error, 0x80070005"), "\(out)")
        #expect(out.contains("REAL: 1 scenarios, 3 steps compared, 0 mismatches, 1 expectations not met, 0 steps simulated only"), "\(out)")
    }

    @Test("expectations are checked against the REAL outcome: result, status, stage, text and a named rule")
    func realOutcomeAgainstExpectation() {
        let real = OutcomeSummary(result: "error", status: "0x8009030E", text: Self.seedText, detail: "(… (rule A6))")
        #expect(real.stage == "source")
        #expect(real.unmet(.error(0x8009030E, rule: "A6", stage: "source", text: Self.seedText)).isEmpty)
        #expect(real.unmet(.success) == ["result: expected success, got error"])
        #expect(real.unmet(.error(0x80070005)).count == 1)
        #expect(real.unmet(.error(0x8009030E, stage: "destination")) == ["stage: expected destination, got source"])
        #expect(real.unmet(.error(0x8009030E, text: Self.seedText + ".")).count == 1)
        // A daemon naming A6 meets an A1 expectation only when the model names A6 with A1.
        #expect(real.unmet(.error(0x8009030E, rule: "A1")) == ["rule: expected A1, got A6"])
        #expect(real.unmet(.error(0x8009030E, rule: "A1"), simulatedRules: ["A1", "A6"]).isEmpty)
        // Several moves at once: multisets; which one waits is the daemon's choice.
        let parts = [OutcomeSummary(result: "success"), OutcomeSummary(result: "queued")]
        #expect(parts.unmet([.queued, .success]).isEmpty)
        #expect(parts.unmet([.success, .success]).count == 1)
    }

    @Test("a REAL outcome that differs from SIM is a mismatch: result, status or exact text")
    func mismatchesAreCounted() throws {
        let sim = OutcomeSummary(result: "error", status: "0x8009030E", text: Self.seedText)
        #expect(sim.differences(from: sim).isEmpty)
        #expect(sim.differences(from: OutcomeSummary(result: "success")).count == 2)
        let otherText = OutcomeSummary(result: "error", status: "0x8009030E", text: Self.seedText + ".")
        #expect(sim.differences(from: otherText).count == 1)
        // The rule the daemon names must be the model's (or one it names with it, A6 behind A1).
        let a1 = OutcomeSummary(result: "error", status: "0x8009030E", text: Self.seedText, rules: ["A1", "A6"])
        #expect(a1.differences(from: OutcomeSummary(result: "error", status: "0x8009030E", text: Self.seedText,
                                                    detail: "(SEC_E_NO_CREDENTIALS: … (rule A6))")).isEmpty)
        let rule = a1.differences(from: OutcomeSummary(result: "error", status: "0x8009030E", text: Self.seedText,
                                                       detail: "(SEC_E_NO_CREDENTIALS: … protected user … (rule A4))"))
        #expect(rule == ["rule: SIM A1/A6, REAL A4"])
        let step = RealStepReport(index: 1, label: nil, action: "Move-VM", mode: .compared, reason: nil, simulated: sim,
                                  real: otherText, mismatches: sim.differences(from: otherText))
        let batch = RealBatchReport(scenarios: [RealScenarioReport(name: "x", file: "x.yaml", steps: [step])])
        #expect(!batch.passed)
        #expect(batch.summary == "REAL: 1 scenarios, 1 steps compared, 1 mismatches, 0 expectations not met, 0 steps simulated only")
    }

    @Test("A5 across two realms with a two-way trust: the real KDC refuses cross-realm S4U2Proxy (0x8009030E), CredSSP across the trust works")
    func crossRealmDelegation() async throws {
        let report = try await Self.run("a5-constrained-delegation-stays-in-its-domain.yaml")
        #expect(report.realmCount == 2)
        #expect(report.simulatedOnly.isEmpty, "\(report.simulatedOnly.map { $0.reason ?? "" })")
        let steps = Dictionary(uniqueKeysWithValues: report.steps.map { ($0.index, $0) })
        let kerberos = try #require(steps[2])
        #expect(kerberos.mode == .compared)
        #expect(kerberos.real?.status == "0x8009030E")
        #expect(kerberos.real?.text == Self.seedText.replacingOccurrences(of: "TestServer02", with: "FabServer02"))
        // The KDC's own answer, not the model's: MIT 1.20's client asks its own realm's KDC, which has no such principal.
        #expect(kerberos.real?.detail?.contains("fabserver02.fabrikam.com@CONTOSO.COM not found in Kerberos database") == true,
                "\(kerberos.real?.detail ?? "")")
        #expect(kerberos.mismatches.isEmpty && kerberos.unmetExpectations.isEmpty)
        let credSSP = try #require(steps[5])
        #expect(credSSP.mode == .compared && credSSP.real?.result == "success", "\(credSSP.real?.description ?? "")")
        #expect(credSSP.mismatches.isEmpty)
    }

    @Test("P5 with three realms: no trust, no path (the KDC has no krbtgt/TAILSPIN.COM@CONTOSO.COM: 0x80090311); through the trust the move works")
    func unrelatedRealms() async throws {
        let report = try await Self.run("p5-same-or-trusting-domains.yaml")
        #expect(report.realmCount == 3)
        #expect(report.simulatedOnly.isEmpty)
        let steps = Dictionary(uniqueKeysWithValues: report.steps.map { ($0.index, $0) })
        let unrelated = try #require(steps[2])
        #expect(unrelated.mode == .compared)
        #expect(unrelated.real?.status == "0x80090311")
        #expect(unrelated.real?.detail?.contains("krbtgt/TAILSPIN.COM@CONTOSO.COM not found") == true, "\(unrelated.real?.detail ?? "")")
        #expect(unrelated.mismatches.isEmpty)
        #expect(steps[3]?.real?.result == "success")
        #expect(steps[3]?.mismatches == [])
        #expect((report.setUpSeconds ?? 0) > 0)
    }

    /// The refusal the source's daemon kept with its ticket (rule A3's second half), not a new KDC answer.
    static let kept = "the answer this host's current ticket got"

    @Test("A3 across two real DCs: added on DC02 — DC01's KDC refuses until replicated, the source's ticket keeps the refusal until purged")
    func delegationAddedOnAnotherDC() async throws {
        let report = try await Self.run("a3-added-on-dc02-source-logs-on-dc01.yaml")
        #expect(report.domainControllerCount == 2)
        let moves = report.steps.filter { $0.mode == .compared }
        try #require(moves.map(\.index) == [2, 4, 6, 8])
        #expect(moves.map { $0.real?.result } == ["error", "error", "error", "success"])
        #expect(moves.allSatisfy { $0.mismatches.isEmpty && $0.unmetExpectations.isEmpty }, "\(moves.map(\.mismatches))")
        // Not replicated yet: DC01's own KDC refuses (the entry is only in DC02's slapd), asked anew.
        #expect(moves[1].real?.detail?.contains("KDC can't fulfill requested option") == true, "\(moves[1].real?.detail ?? "")")
        #expect(moves[0].real?.detail?.contains(Self.kept) == false)
        // Replicated: DC01 holds it now, but the daemon gives the refusal its ticket got.
        #expect(moves[2].real?.detail?.contains(Self.kept) == true, "\(moves[2].real?.detail ?? "")")
    }

    @Test("A3 across two real DCs: removed on DC02 keeps working through replication until the source's ticket is purged")
    func delegationRemovedOnAnotherDC() async throws {
        let report = try await Self.run("a3-removed-on-dc02-keeps-working-until-purge.yaml")
        let moves = report.steps.filter { $0.mode == .compared }
        #expect(moves.map { $0.real?.result } == ["success", "success", "success", "error"])
        #expect(moves.allSatisfy { $0.mismatches.isEmpty && $0.unmetExpectations.isEmpty }, "\(moves.map(\.mismatches))")
        // After the purge the KDC itself refuses: the removal had replicated to DC01.
        #expect(moves.last?.real?.detail?.contains("KDC can't fulfill requested option") == true)
        #expect(moves.last?.real?.detail?.contains(Self.kept) == false)
    }

    @Test("A3 expiry for real: a replicated delegation counts once the source's real ticket ends (advance-clock waits for it)")
    func delegationAfterTicketExpiry() async throws {
        let started = ContinuousClock.now
        let report = try await Self.run("a3-expiry-without-purge.yaml")
        let moves = report.steps.filter { $0.mode == .compared }
        #expect(moves.map { $0.real?.result } == ["error", "error", "success"])
        #expect(moves.allSatisfy { $0.mismatches.isEmpty && $0.unmetExpectations.isEmpty }, "\(moves.map(\.mismatches))")
        #expect(moves[1].real?.detail?.contains(Self.kept) == true, "\(moves[1].real?.detail ?? "")")
        // The wait was for the real ticket (no purge, no restart in the file).
        #expect(ContinuousClock.now - started >= RealScenarioRunner.hostTicketLifetime)
    }

}

extension Result where Failure == any Error {
    /// Captures the outcome of async work (so clean-up can run before it is inspected).
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }

}
