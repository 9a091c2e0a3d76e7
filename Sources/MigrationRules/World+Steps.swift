import Directory
import Hosts
import WindowsStatus

extension World {
    /// Applies one step. Refused steps throw and leave the world unchanged; moves do not throw for
    /// rule failures — their outcomes are in the result.
    @discardableResult
    public mutating func apply(_ step: Step) throws(SimulationError) -> StepResult {
        // Every step validates before it mutates, except a batch of moves: run that on a copy.
        if case .moveMany = step {
            var copy = self
            let result = try copy.applyUnchecked(step)
            self = copy
            return result
        }
        return try applyUnchecked(step)
    }

    /// Applies steps in order; stops at the first refused one (earlier steps stay applied).
    public mutating func apply(_ steps: [Step]) throws(SimulationError) -> [StepResult] {
        var results: [StepResult] = []
        for s in steps { results.append(try apply(s)) }
        return results
    }

    private func principal(_ name: String, near host: String? = nil) throws(SimulationError) -> PrincipalRef {
        let d = host.flatMap { self.host($0)?.domain }
        guard let p = directory.resolve(name, defaultDomain: d) else { throw SimulationError.unknownPrincipal(name) }
        return p
    }

    private mutating func withHost(_ name: String, _ body: (inout SimulatedHost) throws(HostError) -> Void) throws(SimulationError) -> SimulatedHost {
        let key = ServiceTarget.shortKey(name)
        guard var h = hosts[key] else { throw SimulationError.unknownHost(name) }
        do { try body(&h) } catch { throw SimulationError(error) }
        hosts[key] = h
        return h
    }

    private mutating func settings(_ name: String, _ body: (inout MigrationSettings) throws(HostError) -> Void) throws(SimulationError) -> SimulatedHost {
        try withHost(name) { (h: inout SimulatedHost) throws(HostError) in try h.updateMigrationSettings(body) }
    }

    private static func subnet(_ text: String) throws(SimulationError) -> IPv4Subnet {
        guard let s = IPv4Subnet(text) else { throw SimulationError(status: .invalidArgument, message: "Not an IPv4 subnet: \(text)") }
        return s
    }

    private mutating func dirWrite(_ body: (inout Directory) throws(DirectoryError) -> Void) throws(SimulationError) {
        do { try body(&directory) } catch { throw SimulationError(error) }
    }

    /// One case per step kind; the work is in the groups below (host, directory, clock and moves).
    private mutating func applyUnchecked(_ step: Step) throws(SimulationError) -> StepResult {
        switch step {
        case let .signOn(user, host, kind, from): return try signOn(user, to: host, by: kind, from: from)
        case let .signOff(user, host, kind): return try signOff(user, from: host, kind: kind)
        case .enableMigration(let host):
            return try setting(host, { $0.enabled = true }) { "Enabled live migration on \($0)" }
        case .disableMigration(let host):
            return try setting(host, { $0.enabled = false }) { "Disabled live migration on \($0)" }
        case let .setMaximumMigrations(host, count):
            return try setting(host, { $0.maximumMigrations = count }) { "Set MaximumVirtualMachineMigrations of \($0) to \(count)" }
        case let .addMigrationNetwork(host, subnet, priority):
            let s = try World.subnet(subnet)
            return try setting(host, { $0.addNetwork(s, priority: priority) }) { "Added migration network \(s) to \($0)" }
        case let .removeMigrationNetwork(host, subnet):
            let s = try World.subnet(subnet)
            return try setting(host, { (m: inout MigrationSettings) throws(HostError) in try m.removeNetwork(s) }) {
                "Removed migration network \(s) from \($0)"
            }
        case let .setMigrationNetwork(host, subnet, newSubnet, priority):
            return try changeNetwork(host, subnet, to: newSubnet, priority: priority)
        case let .setUseAnyNetwork(host, enabled):
            return try setting(host, { $0.useAnyNetwork = enabled }) { "Set UseAnyNetworkForMigration of \($0) to \(enabled)" }
        case let .setAuthenticationType(host, type):
            return try setting(host, { $0.authenticationType = type }) {
                "Set VirtualMachineMigrationAuthenticationType of \($0) to \(type.rawValue)"
            }
        case let .setPerformanceOption(host, option):
            return try setting(host, { $0.performanceOption = option }) {
                "Set VirtualMachineMigrationPerformanceOption of \($0) to \(option.rawValue)"
            }
        case let .setCredentialGuard(host, enabled):
            let h = try withHost(host) { $0.credentialGuard = enabled }
            return StepResult(summary: "Credential Guard \(enabled ? "on" : "off") on \(h.name)")
        case let .createVM(host, name, state, storagePath):
            return try createVM(name, on: host, state: state, storagePath: storagePath)
        case let .addLocalGroupMember(host, group, member): return try changeLocalGroup(group, of: host, member: member, add: true)
        case let .removeLocalGroupMember(host, group, member): return try changeLocalGroup(group, of: host, member: member, add: false)
        case let .addDelegation(computer, services, by, dc):
            return StepResult(summary: try P2ConfigureDelegation.apply(.add(services), computer: computer, by: by, dc: dc, world: &self))
        case let .removeDelegation(computer, services, by, dc):
            return StepResult(summary: try P2ConfigureDelegation.apply(.remove(services), computer: computer, by: by, dc: dc, world: &self))
        case let .setDelegationKind(computer, kind, by, dc):
            return StepResult(summary: try P2ConfigureDelegation.apply(.kind(kind), computer: computer, by: by, dc: dc, world: &self))
        case let .addGroupMember(group, member, dc): return try changeGroup(group, member: member, on: dc, add: true)
        case let .removeGroupMember(group, member, dc): return try changeGroup(group, member: member, on: dc, add: false)
        case let .setSensitive(user, sensitive, dc):
            let u = try principal(user), now = self.now
            try dirWrite { (d: inout Directory) throws(DirectoryError) in try d.setSensitive(u, sensitive, on: dc, at: now) }
            return StepResult(summary: "\(sensitive ? "Marked" : "Unmarked") \(user) as sensitive and cannot be delegated")
        case .replicateAll:
            directory.replicateAll()
            return StepResult(summary: "Replicated all domain controllers")
        case let .replicate(from, to):
            try dirWrite { (d: inout Directory) throws(DirectoryError) in try d.replicate(from: from, to: to) }
            return StepResult(summary: "Replicated \(from) to \(to)")
        case .advanceClock(let d):
            advance(by: d)
            return StepResult(summary: "Clock advanced by \(d) to \(self.now)")
        case .purgeTickets(let host):
            let h = try withHost(host) { $0.tickets.purge() }
            return StepResult(summary: "Purged the tickets of \(h.name) (klist -li 0x3e7 purge)")
        case .restartHost(let host):
            let h = try withHost(host) { $0.restart() }
            obtainTGT(h.key)
            return StepResult(summary: "Restarted \(h.name)")
        case .move(let move):
            let outcome = try evaluate(move)
            if outcome.report != nil { perform(move) } else { touchTickets(move) }
            return StepResult(summary: summary(move, outcome), outcomes: [outcome])
        case .moveMany(let moves):
            let outcomes = try runBatch(moves)
            let ok = outcomes.filter { $0.isSuccess }.count, q = outcomes.filter(\.isQueued).count
            return StepResult(summary: "\(moves.count) moves: \(ok) running, \(q) queued, \(moves.count - ok - q) failed", outcomes: outcomes)
        }
    }

    // MARK: Host steps

    private mutating func signOn(_ user: String, to host: String, by kind: SignOnKind, from: String?) throws(SimulationError) -> StepResult {
        let u = try principal(user, near: host)
        if let from, self.host(from) == nil { throw SimulationError.unknownHost(from) }
        guard let account = directory.user(u) else { throw SimulationError.unknownPrincipal(user) }
        if account.disabled { throw SimulationError(status: .accountDisabled, message: "\(user) is disabled") }
        let now = self.now
        let h = try withHost(host) { $0.signOn(SignOn(user: u, kind: kind, from: from.map(ServiceTarget.shortKey), since: now)) }
        return StepResult(summary: "\(user) signed on to \(h.name) by \(kind.rawValue)")
    }

    private mutating func signOff(_ user: String, from host: String, kind: SignOnKind?) throws(SimulationError) -> StepResult {
        let u = try principal(user, near: host)
        var n = 0
        let h = try withHost(host) { n = $0.signOff(u, kind: kind) }
        return StepResult(summary: "\(user) signed off from \(h.name) (\(n) session\(n == 1 ? "" : "s"))")
    }

    /// Changes one migration setting of `host`; `summary` gets the host's name.
    private mutating func setting(_ host: String, _ change: (inout MigrationSettings) throws(HostError) -> Void,
                                  summary: (String) -> String) throws(SimulationError) -> StepResult {
        let h = try settings(host, change)
        return StepResult(summary: summary(h.name))
    }

    private mutating func changeNetwork(_ host: String, _ subnet: String, to newSubnet: String?,
                                        priority: Int?) throws(SimulationError) -> StepResult {
        let s = try World.subnet(subnet)
        let n: IPv4Subnet? = try newSubnet.map { (t: String) throws(SimulationError) in try World.subnet(t) }
        return try setting(host, { (m: inout MigrationSettings) throws(HostError) in try m.setNetwork(s, newSubnet: n, priority: priority) }) {
            "Changed migration network \(s) on \($0)"
        }
    }

    private mutating func createVM(_ name: String, on host: String, state: VirtualMachine.State,
                                   storagePath: String?) throws(SimulationError) -> StepResult {
        let h = try withHost(host) { (h: inout SimulatedHost) throws(HostError) in
            guard h.hypervisorInstalled else {
                throw HostError(status: .serviceDoesNotExist, message: "\(h.name) does not have the Hyper-V role")
            }
            try h.addVirtualMachine(VirtualMachine(name: name, state: state, storagePath: storagePath))
        }
        return StepResult(summary: "Created virtual machine \(name) on \(h.name)")
    }

    private mutating func changeLocalGroup(_ group: LocalGroup, of host: String, member: String,
                                           add: Bool) throws(SimulationError) -> StepResult {
        let m = try principal(member, near: host)
        let h = try withHost(host) { if add { $0.localGroups[group, default: []].insert(m) } else { $0.localGroups[group]?.remove(m) } }
        return StepResult(summary: "\(add ? "Added" : "Removed") \(member) \(add ? "to" : "from") \(group.rawValue) on \(h.name)")
    }

    // MARK: Directory steps

    private mutating func changeGroup(_ group: String, member: String, on dc: String?, add: Bool) throws(SimulationError) -> StepResult {
        let g = try principal(group), m = try principal(member), now = self.now
        try dirWrite { (d: inout Directory) throws(DirectoryError) in
            if add { try d.addMember(m, to: g, on: dc, at: now) } else { try d.removeMember(m, from: g, on: dc, at: now) }
        }
        return StepResult(summary: "\(add ? "Added" : "Removed") \(member) \(add ? "to" : "from") \(group)")
    }

    private func summary(_ move: MoveRequest, _ outcome: MoveOutcome) -> String {
        switch outcome {
        case .success: return "Moved \(move.vm) from \(move.source) to \(move.destination)"
        case .queued(_, let p): return "Queued \(move.vm) (position \(p))"
        case .failure(let f): return "Move of \(move.vm) failed [\(f.rule)] \(f.status.hex)"
        }
    }

    /// A move attempt makes the source obtain a TGT if it has none (even when it fails later).
    private mutating func touchTickets(_ move: MoveRequest) {
        guard let s = host(move.source), s.hypervisorInstalled else { return }
        obtainTGT(s.key)
    }

    /// Carries out a move that authenticated: the source gets its tickets, the VM (or its storage) moves.
    mutating func perform(_ move: MoveRequest) {
        guard let s = host(move.source), let d = host(move.destination) else { return }
        obtainTGT(s.key)
        if s.migration.authenticationType == .kerberos, var src = hosts[s.key], let tgt = src.tickets.tgt {
            for cls in A2ConstrainedDelegation.neededClasses(kind: move.kind) {
                src.tickets.store(serviceTicket: KerberosTicket(server: "\(cls.name)/\(d.fqdn)", issuedBy: tgt.issuedBy,
                                                                issuedAt: now, expiresAt: tgt.expiresAt, delegation: .none))
            }
            hosts[s.key] = src
        }
        let vmKey = move.vm.lowercased()
        guard var vm = hosts[s.key]?.virtualMachines[vmKey] else { return }
        if move.kind.needsCIFS {
            vm.storagePath = "\\\\\(d.name)\\VMs\\\(vm.name)"
        }
        if move.kind.movesVM {
            vm.previousHost = s.name
            hosts[s.key]?.virtualMachines[vmKey] = nil
            hosts[d.key]?.virtualMachines[vmKey] = vm
        } else {
            hosts[s.key]?.virtualMachines[vmKey] = vm
        }
    }
}
