import Directory
import Foundation
import MigrationRules
import Scenario
import Testing

/// The fix plan `diagnose` prints must work: applying its steps in the simulator (as the
/// structured changes they carry, not by parsing commands) makes the move succeed, for every
/// failing move of every fixture and for a seeded set of generated worlds; each step changes
/// something (nothing already in place is repeated); only P3 (no role, no VM), P4 and P5 make a
/// move impossible.
@Suite("Fix plans make the move succeed")
struct FixPlanTests {
    enum Verdict { case fixed, impossible, alreadyWorks }

    @discardableResult
    static func check(_ world: World, _ move: MoveRequest, _ label: String) throws -> Verdict {
        let plan = try world.fixPlan(for: move)
        if try world.diagnose(move).succeeds { #expect(plan.steps.isEmpty); return .alreadyWorks }
        if !plan.impossible.isEmpty {
            #expect(plan.steps.isEmpty, "\(label)")
            for f in plan.impossible {
                #expect([.p3, .p4, .p5].contains(f.rule), "\(label): \(f.rule) called impossible")
            }
            return .impossible
        }
        let blockers = try world.diagnose(move).failures.map(\.rule)
        if !plan.succeeds, let why = plan.unresolved, why.contains("Domain Admins"),
           world.directory.domainOrder.allSatisfy({ d in world.directory.group(PrincipalRef(domain: d, name: "Domain Admins"))?.members.isEmpty ?? true }) {
            return .impossible  // honest: nobody may change delegation in this world
        }
        #expect(plan.succeeds, "\(label): no plan found (\(plan.unresolved ?? "")); blockers \(blockers)")
        var copy = world
        var current = move
        for step in plan.steps {
            let before = copy
            let before_move = current
            current = try FixPlan.apply([step], to: &copy, move: current)
            #expect(copy != before || current != before_move, "\(label): step changes nothing: \(step.command)")
            #expect(!step.command.isEmpty)
        }
        let outcome = try copy.evaluate(current)
        #expect(outcome.failure == nil, "\(label): after \(plan.steps.map(\.command)) still \(String(describing: outcome.failure))")
        return .fixed
    }

    @Test("Every failing move in the fixtures")
    func fixtures() throws {
        let files = try ScenarioFiles.expand([TestPaths.fixtures.path])
        var fixed = 0, impossible = 0
        for file in files {
            let scenario = try Scenario.load(file: file)
            var env = scenario.initialEnvironment()
            for (i, step) in scenario.steps.enumerated() {
                let specs: [MoveSpec]
                switch step.action {
                case .move(let m): specs = [m]
                case .moves(let ms): specs = ms
                default: specs = []
                }
                for spec in specs {
                    guard let request = try? env.request(for: spec), (try? env.world.diagnose(request)) != nil else { continue }
                    switch try Self.check(env.world, request, "\(file) step \(i + 1)") {
                    case .fixed: fixed += 1
                    case .impossible: impossible += 1
                    case .alreadyWorks: break
                    }
                }
                _ = env.apply(step.action)
            }
        }
        #expect(fixed >= 30, "fixed \(fixed), impossible \(impossible)")
        #expect(impossible >= 2)
    }

    /// A small deterministic generator (SplitMix64).
    struct Seeded {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func pick<T>(_ options: [T]) -> T { options[Int(next() % UInt64(options.count))] }
        mutating func chance(_ percent: UInt64) -> Bool { next() % 100 < percent }
    }

    static func generated(_ seed: UInt64) -> (yaml: String, move: String) {
        var r = Seeded(state: seed)
        let oses = ["2012", "2012r2", "2016", "2019", "2025"]
        let twoDomains = r.chance(25)
        var hosts = ""
        for (i, name) in ["HV1", "HV2"].enumerated() {
            let domain = twoDomains && i == 1 ? "fabrikam.com" : "contoso.com"
            let netbios = domain == "contoso.com" ? "CONTOSO" : "FABRIKAM"
            let groups = r.chance(60) ? "local-groups: {Hyper-V Administrators: ['CONTOSO\\\(r.pick(["alice", "Hyper-V Operators"]))']}, " : ""
            _ = netbios
            hosts += "  - {name: \(name), domain: \(domain), os: \(r.pick(oses)), addresses: [10.0.\(i).5], \(groups)"
                + (i == 0 ? "vms: [VM1], " : "") + "credential-guard: \(r.chance(20)), "
                + "settings: {migration-enabled: \(r.chance(60)), authentication-type: \(r.pick(["CredSSP", "Kerberos"])), "
                + "migration-networks: [\(r.chance(50) ? "10.0.\(i).0/24" : "")]}}\n"
        }
        hosts += "  - {name: AdminPC, hyper-v: false, addresses: [10.0.9.9]}\n"
        let delegation = r.pick(["none", "kerberos-only", "any-protocol", "unconstrained"])
        let services = delegation == "kerberos-only" || delegation == "any-protocol"
            ? ", allowed-to-delegate-to: [\(r.chance(50) ? "'Microsoft Virtual System Migration Service/HV2.contoso.com'" : "'cifs/HV2'")]" : ""
        let nested = r.chance(30)
        let yaml = """
            name: generated \(seed)
            directory:
              domains: [{name: contoso.com, netbios: CONTOSO}\(twoDomains ? ", {name: fabrikam.com, netbios: FABRIKAM}" : "")]
            \(twoDomains && r.chance(70) ? "  trusts: [{trusting: contoso.com, trusted: fabrikam.com, direction: two-way}]\n" : "")\
              users:
                - {name: Administrator, groups: [Domain Admins]}
                - {name: alice, sensitive: \(r.chance(15)), groups: [\(r.chance(15) && !nested ? "Protected Users, " : "")\(nested ? "Tier2" : "Domain Users")]}
              groups:
                - {name: Hyper-V Operators, members: [alice\(nested ? ", Tier2" : "")]}
                - {name: Tier2, members: []}
            \(nested && r.chance(70) ? "    - {name: Protected Users, members: [Tier2]}\n" : "")\
              computers:
                - {name: HV1, delegation: \(delegation)\(services)}
            hosts:
            \(hosts)steps:
              - sign-on: {user: alice, host: \(r.pick(["HV1", "HV2", "AdminPC"])), method: \(r.pick(["console", "rdp", "remote-shell-kerberos", "remote-shell-credssp"]))}
            """
        return (yaml, nested ? "nested" : "")
    }

    @Test("Seeded generated worlds")
    func generatedWorlds() throws {
        var fixed = 0, impossible = 0, works = 0, skipped = 0
        for seed in UInt64(1)...300 {
            let (yaml, _) = Self.generated(seed)
            let scenario: Scenario
            do { scenario = try Scenario(yaml: yaml, file: "generated-\(seed).yaml") } catch {
                if skipped == 0 { Issue.record("generated world does not load: \(error)\n\(yaml)") }
                skipped += 1
                continue
            }
            var env = scenario.initialEnvironment()
            for step in scenario.steps { _ = env.apply(step.action) }
            guard let signedOn = env.world.allHosts.first(where: { !$0.signOns.isEmpty }) else { skipped += 1; continue }
            let request = MoveRequest(vm: "VM1", from: "HV1", to: "HV2", kind: seed % 5 == 0 ? .both : .live, user: "alice",
                                      startedFrom: signedOn.name)
            switch try Self.check(env.world, request, "seed \(seed)\n\(yaml)") {
            case .fixed: fixed += 1
            case .impossible: impossible += 1
            case .alreadyWorks: works += 1
            }
        }
        #expect(skipped < 30, "\(skipped) generated worlds did not load")
        #expect(fixed >= 100, "fixed \(fixed), impossible \(impossible), works \(works), skipped \(skipped)")
    }
}
