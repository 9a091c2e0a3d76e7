import Directory
import Hosts

/// One change of a ``FixPlan``: the command an admin runs (PowerShell / Windows tools), the
/// `samba-tool` equivalent for directory changes, and the simulator change it stands for.
public struct FixStep: Sendable, Hashable, Codable {
    public enum Change: Sendable, Hashable, Codable {
        /// A change to hosts or the directory.
        case world(Step)
        /// Start the move from the user's session of `session` kind on `host` (where the move
        /// runs, not a setting).
        case startMove(on: String, session: SignOnKind)
    }

    /// The rule this step clears.
    public var rule: RuleID
    public var command: String
    public var sambaTool: String?
    public var change: Change
    /// For rules checked on both hosts (P1, P3): which end this step fixes.
    public var stage: Stage?

    public init(rule: RuleID, command: String, sambaTool: String? = nil, change: Change, stage: Stage? = nil) {
        self.stage = stage
        self.rule = rule
        self.command = command
        self.sambaTool = sambaTool
        self.change = change
    }
}

/// The smallest ordered set of changes after which a move succeeds, computed from the world's
/// state (nothing already in place is repeated) and checked in the simulator; or why no
/// configuration change can make it succeed.
public struct FixPlan: Sendable, Hashable, Codable {
    public var steps: [FixStep]
    /// Failures no configuration change clears (P3 without the Hyper-V role or the VM, P4, P5):
    /// while one of them holds, the move is impossible and ``steps`` is empty.
    public var impossible: [MigrationFailure]
    /// True when the simulator ran the move after ``steps`` and it succeeded (or queued, rule N2).
    public var succeeds: Bool
    /// The move as it runs after the plan (``FixStep/Change/startMove(on:session:)`` changes where it starts).
    public var move: MoveRequest
    /// Why no plan was found when ``succeeds`` is false and nothing is ``impossible``
    /// (for example: delegation needs a member of Domain Admins and the domain has none).
    public var unresolved: String?

    public init(steps: [FixStep], impossible: [MigrationFailure], succeeds: Bool, move: MoveRequest, unresolved: String? = nil) {
        self.unresolved = unresolved
        self.steps = steps
        self.impossible = impossible
        self.succeeds = succeeds
        self.move = move
    }

    /// Applies `steps` to `world` and returns the move to run (the changes are structured, no command is parsed).
    public static func apply(_ steps: [FixStep], to world: inout World, move: MoveRequest) throws(SimulationError) -> MoveRequest {
        var move = move
        for s in steps {
            switch s.change {
            case .world(let step): try world.apply(step)
            case let .startMove(host, session):
                move.startedFrom = host
                move.session = session
            }
        }
        return move
    }
}

extension World {
    /// The fix plan for `move`: every failure that no configuration clears makes it impossible;
    /// otherwise the first failing rule's fix is applied to a copy of the world, the move is
    /// evaluated again, and so on until it succeeds. Changes nothing.
    public func fixPlan(for move: MoveRequest) throws(SimulationError) -> FixPlan {
        let first = try diagnose(move)
        if first.succeeds { return FixPlan(steps: [], impossible: [], succeeds: true, move: move) }
        let unfixable = first.failures.filter(FixPlanner.isUnfixable)
        if !unfixable.isEmpty { return FixPlan(steps: [], impossible: unfixable, succeeds: false, move: move) }
        var world = self
        var current = move
        var steps: [FixStep] = []
        var seen: Set<MigrationFailure> = []
        for _ in 0..<24 {
            guard case .failure(let f) = try world.evaluate(current) else {
                return FixPlan(steps: steps, impossible: [], succeeds: true, move: current)
            }
            // The same failure again: the last fix did not clear it; stop rather than repeat it.
            guard seen.insert(f).inserted else { break }
            if FixPlanner.isUnfixable(f) { return FixPlan(steps: steps, impossible: [f], succeeds: false, move: current) }
            let ctx = try MoveContext(world: world, move: current)
            let next = FixPlanner.steps(for: f, ctx, world: world)
            if next.isEmpty {
                return FixPlan(steps: steps, impossible: [], succeeds: false, move: current, unresolved: FixPlanner.whyNoSteps(f, ctx))
            }
            current = try FixPlan.apply(next, to: &world, move: current)
            steps += next
        }
        return FixPlan(steps: steps, impossible: [], succeeds: false, move: current,
                       unresolved: "the fixes found did not clear every rule in the simulator")
    }
}
