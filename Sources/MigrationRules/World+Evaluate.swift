import Directory
import Hosts
import WindowsStatus

extension World {
    /// Decides a move without changing anything: success, or the first rule it breaks in the
    /// order Windows meets them (see docs/rules.md). Never returns `.queued` (see ``evaluate(batch:)``).
    /// Throws only when the request names hosts, users or sessions that do not exist.
    public func evaluate(_ move: MoveRequest) throws(SimulationError) -> MoveOutcome {
        let ctx = try MoveContext(world: self, move: move)
        var run = RuleRun(collectAll: false)
        Evaluator.check(ctx, &run)
        if let f = run.failures.first { return .failure(f) }
        return .success(MoveReport(move: move, source: ctx.source.name, destination: ctx.destination.name,
                                   authentication: ctx.authentication, destinationAddress: run.address,
                                   warnings: run.warnings))
    }

    /// Every rule the move breaks, each with its fix, plus warnings. Changes nothing.
    public func diagnose(_ move: MoveRequest) throws(SimulationError) -> Diagnosis {
        let ctx = try MoveContext(world: self, move: move)
        var run = RuleRun(collectAll: true)
        Evaluator.check(ctx, &run)
        return Diagnosis(move: move, failures: run.failures, warnings: run.warnings)
    }

    /// Decides moves started together (rule N2): each is evaluated after the earlier ones took
    /// effect; those that authenticate run while both hosts have a free slot (each host's
    /// `-MaximumVirtualMachineMigrations`), the rest are `.queued` with their 1-based position and run
    /// when a slot frees — they do not fail.
    public func evaluate(batch moves: [MoveRequest]) throws(SimulationError) -> [MoveOutcome] {
        var copy = self
        return try copy.runBatch(moves)
    }
}

/// Accumulates what the rules find for one move.
struct RuleRun {
    let collectAll: Bool
    var failures: [MigrationFailure] = []
    var warnings: [RuleWarning] = []
    /// The destination address chosen by N1.
    var address: IPv4Address? = nil

    init(collectAll: Bool) { self.collectAll = collectAll }

    /// Records a failure; returns true when evaluation should stop.
    @inline(__always)
    mutating func fail(_ f: MigrationFailure?) -> Bool {
        guard let f else { return false }
        failures.append(f)
        return !collectAll
    }
}

/// Runs the rules in Windows's order.
enum Evaluator {
    static func check(_ ctx: MoveContext, _ run: inout RuleRun) {
        // 1. Reaching the source's VMMS: role, permission, the VM, migration enabled.
        if run.fail(P3Prerequisites.sourceRole(ctx)) { return }
        if run.fail(P1PermissionToMigrate.check(ctx, on: ctx.source, stage: .source)) { return }
        if run.fail(P3Prerequisites.sourceVM(ctx)) { return }
        // 2. Connecting to the destination's migration listener.
        if run.fail(P3Prerequisites.destination(ctx)) { return }
        let n1 = N1Networks.check(ctx, &run)
        if run.fail(n1) { return }
        // 3. Authenticating at the source.
        if run.fail(P5SameOrTrustingDomains.check(ctx)) { return }
        switch ctx.authentication {
        case .credSSP:
            if run.fail(A1CredSSPSignOn.check(ctx)) { return }
            if run.fail(A7CredentialGuard.check(ctx)) { return }
            if run.fail(A4NonDelegableUsers.check(ctx)) { return }
        case .kerberos:
            if run.fail(A4NonDelegableUsers.check(ctx)) { return }
            if run.fail(A5DelegationStaysInDomain.check(ctx)) { return }
            let a2 = A2ConstrainedDelegation.check(ctx, &run)
            if run.fail(a2) { return }
        }
        // 4. The destination authorises and accepts the VM.
        if run.fail(P1PermissionToMigrate.check(ctx, on: ctx.destination, stage: .destination)) { return }
        if run.fail(P4NoDownLevelMoves.check(ctx)) { return }
        S1Traffic.warn(ctx, &run)
    }
}
