import Directory
import Foundation
import Hosts
import MigrationRules
import WindowsStatus

/// A simulated world that actions are applied to, one at a time: what a scenario runs against,
/// and what `migauth`'s cmdlet-like commands keep in their environment file.
///
/// ``apply(_:)`` is all-or-nothing: a refused action leaves the environment exactly as it was.
public struct SimulatedEnvironment: Sendable, Hashable, Codable {
    /// The directory, hosts and clock.
    public var world: World
    /// Where it came from (a scenario's name, an LDIF file).
    public var origin: String?

    public init(world: World, origin: String? = nil) {
        self.world = world
        self.origin = origin
    }

    // MARK: Applying actions

    /// Applies `action`; on refusal nothing changes and the outcome says why.
    ///
    /// A failed move is not a refusal of the world's state: the source may still have fetched a
    /// ticket while trying (which matters for rule A3), so such side effects are kept and
    /// ``ActionOutcome/changedWorld`` says whether anything changed.
    public mutating func apply(_ action: ScenarioAction) -> ActionOutcome {
        var copy = world
        var outcome = Self.apply(action, to: &copy)
        if outcome.result == .error && !Self.isMove(action) {
            outcome.changedWorld = false
            return outcome
        }
        outcome.changedWorld = copy != world
        world = copy
        return outcome
    }

    static func isMove(_ action: ScenarioAction) -> Bool {
        switch action {
        case .move, .moves: true
        default: false
        }
    }

    static func apply(_ action: ScenarioAction, to world: inout World) -> ActionOutcome {
        switch action {
        case .move(let spec):
            let request: MoveRequest
            do { request = try resolve(spec, in: world) } catch { return refusal(error, stage: "host") }
            return applyMoves([request], to: &world)
        case .moves(let specs):
            var requests: [MoveRequest] = []
            for s in specs {
                do { requests.append(try resolve(s, in: world)) } catch { return refusal(error, stage: "host") }
            }
            return applyMoves(requests, to: &world)
        default:
            let steps: [Step]
            do { steps = try Self.steps(for: action, in: world) } catch { return refusal(error, stage: stage(of: action)) }
            do {
                for s in steps { _ = try world.apply(s) }
            } catch {
                return refusal(error, stage: stage(of: action))
            }
            var outcome = ActionOutcome(result: .success, rulesExercised: rules(of: action), changedWorld: true)
            if case let .setHost(host, change) = action, change.useAnyNetworkForMigration == true,
               let h = world.host(host) {
                outcome.warnings.append(anyNetworkWarning(h.name))
            }
            return outcome
        }
    }

    static func anyNetworkWarning(_ host: String) -> OutcomeWarning {
        OutcomeWarning(rule: "S1", text: "\(host) accepts live migrations on any network. Migration traffic should stay on isolated, trusted networks (Add-VMMigrationNetwork, then Set-VMHost -UseAnyNetworkForMigration $false).")
    }

    static func applyMoves(_ requests: [MoveRequest], to world: inout World) -> ActionOutcome {
        let result: StepResult
        do {
            result = try world.apply(requests.count == 1 ? .move(requests[0]) : .moveMany(requests))
        } catch {
            return refusal(error, stage: "host")
        }
        let parts = zip(requests, result.outcomes).map { request, outcome in
            ActionOutcome(outcome, request: request, world: world)
        }
        let changed = parts.contains { $0.result != .error }
        if requests.count == 1, var only = parts.first {
            only.changedWorld = changed
            return only
        }
        let overall: Expectation.Result = parts.contains { $0.result == .error } ? .error
            : parts.contains { $0.result == .queued } ? .queued : .success
        return ActionOutcome(result: overall, rulesExercised: ["N2"], changedWorld: changed, parts: parts)
    }

    /// A refusal from the world (unknown name, P2, a contradictory setting).
    static func refusal(_ error: SimulationError, stage: String) -> ActionOutcome {
        ActionOutcome(result: .error, status: error.status, rule: error.rule?.rawValue,
                      stage: error.rule == .p2 ? "directory" : stage, message: error.status.windowsMessage,
                      explanation: error.message, fixes: error.rule == .p2
                        ? ["Make the change as a member of the account domain's Domain Admins (the article: \"Membership in the Domain Administrators group is required to configure constrained delegation\")."]
                        : [],
                      rulesExercised: error.rule.map { [$0.rawValue] } ?? [], changedWorld: false)
    }

    static func stage(of action: ScenarioAction) -> String {
        switch action {
        case .delegation, .replicate, .domainGroupMember, .setSensitive: "directory"
        default: "host"
        }
    }

    static func rules(of action: ScenarioAction) -> [String] {
        switch action {
        case .delegation: ["P2", "A3"]
        case .replicate, .purgeTickets, .restart, .advanceClock: ["A3"]
        case .addMigrationNetwork, .removeMigrationNetwork, .setMigrationNetwork: ["N1"]
        case .setHost(_, let c):
            (c.maximumVirtualMachineMigrations != nil ? ["N2"] : []) + (c.useAnyNetworkForMigration != nil ? ["N1", "S1"] : [])
                + (c.authenticationType != nil ? ["A1", "A2"] : [])
        case .enableMigration, .disableMigration, .newVM: ["P3"]
        case .localGroupMember: ["P1"]
        case .signOn, .signOff: ["A1"]
        case .domainGroupMember: ["P1", "A4"]
        case .setSensitive: ["A4"]
        case .setCredentialGuard: ["A7"]
        case .move, .moves: []
        }
    }

    /// The rules engine's steps for one action (`Set-VMHost` with several parameters is several steps).
    static func steps(for action: ScenarioAction, in world: World) throws(SimulationError) -> [Step] {
        switch action {
        case let .signOn(user, host, method, from): return [.signOn(user: user, host: host, kind: method, from: from)]
        case let .signOff(user, host): return [.signOff(user: user, host: host)]
        case let .enableMigration(host): return [.enableMigration(host: host)]
        case let .disableMigration(host): return [.disableMigration(host: host)]
        case let .setHost(host, c):
            var steps: [Step] = []
            if let v = c.maximumVirtualMachineMigrations { steps.append(.setMaximumMigrations(host: host, count: v)) }
            if let v = c.useAnyNetworkForMigration { steps.append(.setUseAnyNetwork(host: host, enabled: v)) }
            if let v = c.authenticationType { steps.append(.setAuthenticationType(host: host, type: v)) }
            if let v = c.performanceOption { steps.append(.setPerformanceOption(host: host, option: v)) }
            return steps
        case let .addMigrationNetwork(host, subnet, priority):
            return [.addMigrationNetwork(host: host, subnet: subnet, priority: priority)]
        case let .removeMigrationNetwork(host, subnet): return [.removeMigrationNetwork(host: host, subnet: subnet)]
        case let .setMigrationNetwork(host, subnet, newSubnet, priority):
            return [.setMigrationNetwork(host: host, subnet: subnet, newSubnet: newSubnet, priority: priority)]
        case let .newVM(host, name): return [.createVM(host: host, name: name)]
        case let .localGroupMember(host, group, member, add):
            return [add ? .addLocalGroupMember(host: host, group: group, member: member)
                        : .removeLocalGroupMember(host: host, group: group, member: member)]
        case let .delegation(c):
            switch c.operation {
            case .add:
                var steps: [Step] = [.addDelegation(computer: c.computer, services: c.services, by: c.actingUser, dc: c.dc)]
                if let kind = c.protocolChoice {
                    steps.append(.setDelegationKind(computer: c.computer, kind: kind, by: c.actingUser, dc: c.dc))
                }
                return steps
            case .remove:
                return [.removeDelegation(computer: c.computer, services: c.services, by: c.actingUser, dc: c.dc)]
            }
        case let .replicate(from, to):
            switch (from, to) {
            case (nil, nil): return [.replicateAll]
            case let (f?, t?): return [.replicate(from: f, to: t)]
            case let (f?, nil):
                return try peers(of: f, in: world).map { Step.replicate(from: f, to: $0) }
            case let (nil, t?):
                return try peers(of: t, in: world).map { Step.replicate(from: $0, to: t) }
            }
        case let .advanceClock(seconds): return [.advanceClock(.seconds(Int64(seconds)))]
        case let .purgeTickets(host): return [.purgeTickets(host: host)]
        case let .restart(host): return [.restartHost(host: host)]
        case let .domainGroupMember(group, member, add, dc):
            return [add ? .addGroupMember(group: group, member: member, dc: dc) : .removeGroupMember(group: group, member: member, dc: dc)]
        case let .setSensitive(user, sensitive, dc): return [.setSensitive(user: user, sensitive: sensitive, dc: dc)]
        case let .setCredentialGuard(host, enabled): return [.setCredentialGuard(host: host, enabled: enabled)]
        case .move, .moves: return []
        }
    }

    static func peers(of dc: String, in world: World) throws(SimulationError) -> [String] {
        guard let d = world.directory.domainOfController(dc), let state = world.directory.domain(d) else {
            throw SimulationError(status: .dsNoSuchObject, message: "No domain controller named \(dc)")
        }
        return state.controllerOrder.filter { $0 != dc.lowercased() }
    }

    /// The rules engine's request for `spec` in this world (the source filled in).
    public func request(for spec: MoveSpec) throws(SimulationError) -> MoveRequest { try Self.resolve(spec, in: world) }

    /// Fills in the source (the host holding the VM now) of a move.
    static func resolve(_ spec: MoveSpec, in world: World) throws(SimulationError) -> MoveRequest {
        let source: String
        if let s = spec.source {
            source = s
        } else if let holder = world.allHosts.first(where: { $0.virtualMachine(spec.vm) != nil }) {
            source = holder.name
        } else {
            throw SimulationError(status: .notFound, rule: .p3, message: "No host has a virtual machine named \(spec.vm)")
        }
        return MoveRequest(vm: spec.vm, from: source, to: spec.destination, kind: spec.kind, user: spec.user,
                           startedFrom: spec.startedOn, session: spec.session, destinationAddress: spec.address)
    }

    // MARK: Diagnosis

    /// Whether the move would work now, every rule that blocks it, and the fixes. Changes nothing.
    public func diagnose(_ spec: MoveSpec) -> MoveDiagnosis {
        let request: MoveRequest
        do { request = try Self.resolve(spec, in: world) } catch {
            let o = Self.refusal(error, stage: "host")
            return MoveDiagnosis(request: spec, wouldSucceed: false, outcome: o, blockers: [o], warnings: [])
        }
        var spec = spec
        spec.source = request.source
        do {
            let d = try world.diagnose(request)
            let first = try world.evaluate(request)
            let outcome = ActionOutcome(first, request: request, world: world)
            let plan = d.succeeds ? nil : try world.fixPlan(for: request)
            let blockers = d.failures.map { f in
                var o = ActionOutcome(MoveOutcome.failure(f), request: request, world: world)
                if let plan { o.fixes = Self.fixes(for: f, in: plan) }
                return o
            }
            var diagnosis = MoveDiagnosis(request: spec, wouldSucceed: d.succeeds, outcome: outcome, blockers: blockers,
                                          warnings: d.warnings.map { OutcomeWarning(rule: $0.rule.rawValue, text: $0.message) })
            diagnosis.plan = plan
            return diagnosis
        } catch {
            let o = Self.refusal(error, stage: "host")
            return MoveDiagnosis(request: spec, wouldSucceed: false, outcome: o, blockers: [o], warnings: [])
        }
    }

    /// A blocker's fixes from the plan: its own steps (Windows command, then samba-tool), "impossible
    /// while …" when another rule cannot be fixed by configuration, or that other steps clear it.
    static func fixes(for f: MigrationFailure, in plan: FixPlan) -> [String] {
        if !plan.impossible.isEmpty {
            if plan.impossible.contains(f) { return f.fixes }
            return plan.impossible.map { "Impossible while \($0.rule.rawValue) holds: \($0.explanation)" }
        }
        let own = plan.steps.filter { ($0.rule == f.rule || (f.rule == .a2 && $0.rule == .a2b)) && ($0.stage == nil || $0.stage == f.stage) }
        if own.isEmpty {
            let others = Array(Set(plan.steps.map(\.rule.rawValue))).sorted().joined(separator: ", ")
            return plan.succeeds ? ["Nothing of its own: the steps for \(others) clear it (see the fix plan)."] : f.fixes
        }
        return own.flatMap { [$0.command] + ($0.sambaTool.map { ["or with samba-tool: \($0)"] } ?? []) }
    }

    /// ``diagnose(_:)`` of a world that does not say how the user is signed on or where the VM is
    /// (an LDIF directory has neither): the user signed on to the machine the move starts on
    /// (`startedOn`, else the source) by `signedOn` (a remote session coming from `sessionFrom`),
    /// and the VM on `spec.source` when no host has it. The diagnosis lists what it assumed.
    public func diagnose(_ spec: MoveSpec, signedOn: SignOnKind, sessionFrom: String? = nil) -> MoveDiagnosis {
        var world = self.world
        var assumed: [String] = []
        var spec = spec
        do throws(SimulationError) {
            if let source = spec.source, !world.allHosts.contains(where: { $0.virtualMachine(spec.vm) != nil }) {
                _ = try world.apply(.createVM(host: source, name: spec.vm))
                assumed.append("\(spec.vm) runs on \(world.host(source)?.name ?? source)")
            }
            guard let machine = spec.startedOn ?? spec.source ?? world.allHosts.first(where: { $0.virtualMachine(spec.vm) != nil })?.name else {
                throw SimulationError(status: .notFound, rule: .p3, message: "No host has a virtual machine named \(spec.vm); give --from")
            }
            _ = try world.apply(.signOn(user: spec.user, host: machine, kind: signedOn, from: sessionFrom))
            assumed.append("\(spec.user) is signed on to \(world.host(machine)?.name ?? machine) by \(signedOn.rawValue)"
                           + (sessionFrom.map { " from \($0)" } ?? ""))
        } catch {
            let o = Self.refusal(error, stage: "host")
            return MoveDiagnosis(request: spec, wouldSucceed: false, outcome: o, blockers: [o], warnings: [], assumptions: assumed)
        }
        spec.session = signedOn
        var d = SimulatedEnvironment(world: world, origin: origin).diagnose(spec)
        d.assumptions = assumed
        return d
    }

    // MARK: Creating

    /// The seed article's world: contoso.com (CONTOSO) with DC01, the Hyper-V hosts TestServer01 and
    /// TestServer02 (2012 R2, 192.168.10.1 and .2) and the workstation AdminPC; users
    /// `Administrator` (Domain Admins) and `alice` (Hyper-V Administrators on both hosts); VM1 on
    /// TestServer01. Live migration is off, as after installing Hyper-V.
    public static func seedWorld() -> SimulatedEnvironment {
        let yaml = """
            name: the seed article's hosts
            directory:
              domains: [{name: contoso.com, netbios: CONTOSO}]
              users: [{name: Administrator, groups: [Domain Admins]}, {name: alice}]
            hosts:
              - {name: TestServer01, addresses: [192.168.10.1], vms: [VM1],
                 local-groups: {Hyper-V Administrators: ['CONTOSO\\alice']}}
              - {name: TestServer02, addresses: [192.168.10.2],
                 local-groups: {Hyper-V Administrators: ['CONTOSO\\alice']}}
              - {name: AdminPC, hyper-v: false, addresses: [192.168.10.50]}
            steps: []
            """
        do {
            return try Scenario(yaml: yaml, file: "<seed world>").initialEnvironment()
        } catch {
            return SimulatedEnvironment(world: World(), origin: "empty (\(error))")
        }
    }

    /// The directory from an LDIF file, with a host for every computer account that is not a DC:
    /// a Hyper-V host (default settings) when its `operatingSystem` is a Windows Server
    /// generation, else a workstation. Logon DC: the domain's first DC.
    public static func fromLDIF(file: String) throws(ScenarioError) -> SimulatedEnvironment {
        try fromLDIFWithNotes(file: file).environment
    }

    /// ``fromLDIF(file:)`` and what the import skipped (search references, objects the model does not read).
    public static func fromLDIFWithNotes(file: String) throws(ScenarioError) -> (environment: SimulatedEnvironment, notes: [LDIFNote]) {
        let imported = try LDIFSource.loadWithNotes(path: file, at: SourceLocation(file: file, field: ""))
        var world = World(directory: imported.directory)
        do { try world.addHostsForComputers() } catch {
            throw ScenarioError(file: file, message: "cannot create hosts: \(error.message)")
        }
        return (SimulatedEnvironment(world: world, origin: file), imported.notes)
    }

    // MARK: Showing

    /// `contoso.com: 1 DC, 3 hosts, 2 users`.
    public var summary: String {
        let dir = world.directory
        let domains = dir.domainOrder.map { d -> String in
            let dcs = dir.domain(d)?.controllerOrder.count ?? 0
            let users = dir.replica(of: d)?.users.count ?? 0
            return "\(d) (\(dcs) DC\(dcs == 1 ? "" : "s"), \(users) user\(users == 1 ? "" : "s"))"
        }
        return "\(domains.joined(separator: ", ")); \(world.allHosts.count) hosts; clock \(world.now)"
    }

    /// Hosts, their settings, sessions and VMs, one block per host.
    public var overview: String {
        var out = "\(summary)\n"
        for h in world.allHosts {
            let m = h.migration
            let kind = h.hypervisorInstalled ? "Windows Server \(h.os.rawValue), Hyper-V" : "workstation, no Hyper-V"
            let dc = world.directory.controller(h.logonDC)?.name ?? h.logonDC
            out += "\n\(h.name) (\(h.domain), \(kind), logon DC \(dc))\n"
            if !h.addresses.isEmpty { out += "  addresses: \(h.addresses.map(\.description).joined(separator: ", "))\n" }
            if h.hypervisorInstalled {
                out += "  live migration: \(m.enabled ? "enabled" : "disabled"); simultaneous: \(m.maximumMigrations); authentication: \(m.authenticationType.rawValue); performance: \(m.performanceOption.rawValue)\n"
                out += "  incoming networks: \(m.useAnyNetwork ? "any network" : (m.networks.isEmpty ? "none" : m.networks.map { $0.subnet.description }.joined(separator: ", ")))\n"
                out += "  VMs: \(h.virtualMachines.values.map(\.name).sorted().joined(separator: ", "))\n"
            }
            if h.credentialGuard { out += "  Credential Guard: on\n" }
            for g in LocalGroup.allCases {
                let members = (h.localGroups[g] ?? []).map(display).sorted()
                if !members.isEmpty { out += "  \(g.rawValue): \(members.joined(separator: ", "))\n" }
            }
            for s in h.signOns { out += "  signed on: \(display(s.user)) (\(s.kind.rawValue)\(s.from.map { " from \($0)" } ?? ""))\n" }
        }
        return out
    }

    public func jsonString() throws -> String { try JSONOutput.string(self) }

    /// `CONTOSO\Domain Admins`: NetBIOS domain and the account's own spelling.
    func display(_ ref: PrincipalRef) -> String {
        let dir = world.directory
        let domain = dir.domain(ref.domain)?.domain.netBIOSName ?? ref.domain
        let name = dir.user(ref)?.samAccountName ?? dir.group(ref)?.samAccountName ?? ref.name
        return "\(domain)\\\(name)"
    }
}

extension ActionOutcome {
    /// Converts the rules engine's decision on a move.
    init(_ outcome: MoveOutcome, request: MoveRequest, world: World) {
        switch outcome {
        case .success(let report), .queued(let report, _):
            let queued = outcome.isQueued
            self.init(result: queued ? .queued : .success,
                      warnings: report.warnings.map { OutcomeWarning(rule: $0.rule.rawValue, text: $0.message) },
                      rulesExercised: Self.passedRules(report: report, world: world) + (queued ? ["N2"] : []),
                      changedWorld: true)
        case .failure(let f):
            self.init(result: .error, status: f.status, rule: f.rule.rawValue,
                      stage: f.stage.rawValue.lowercased(), message: f.message, explanation: f.explanation,
                      fixes: f.fixes,
                      rulesExercised: ([f.rule] + f.relatedRules).map(\.rawValue), changedWorld: false)
            self.relatedRules = f.relatedRules.map(\.rawValue)
        }
    }

    /// The rules a successful move passed, in the engine's order.
    static func passedRules(report: MoveReport, world: World) -> [String] {
        var rules = ["P3", "P1", "N1", "P5"]
        switch report.authentication {
        case .credSSP: rules += ["A1", "A7", "A4"]
        case .kerberos:
            rules += ["A4", "A5", "A2"]
            if let s = world.host(report.source), s.os >= .ws2016 { rules.append("A2b") }
        }
        rules.append("P4")
        rules += report.warnings.map(\.rule.rawValue)
        var seen = Set<String>()
        return rules.filter { seen.insert($0).inserted }
    }
}
