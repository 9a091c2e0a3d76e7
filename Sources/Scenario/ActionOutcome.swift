import MigrationRules
import WindowsStatus

/// What came of one action: accepted, queued (rule N2) or refused, with the Windows status, the
/// deciding rule, where it failed, the exact message, an explanation and the fix.
public struct ActionOutcome: Sendable, Hashable, Codable {
    public var result: Expectation.Result
    /// The Windows status of a refusal (for example ``WindowsStatus/noCredentials``).
    public var status: WindowsStatus?
    /// The rule of docs/rules.md that decided a refusal (`A1`).
    public var rule: String?
    /// Rules that explain the refusal further (A3 for a stale ticket, A6 for the round trip).
    public var relatedRules: [String] = []
    /// `source`, `destination`, `directory` or `host`.
    public var stage: String?
    /// The exact text Windows shows: for a failed move, Hyper-V's two lines.
    public var message: String?
    /// A plain explanation naming the hosts, users and settings involved.
    public var explanation: String?
    /// What to change so it works, in order (commands or actions).
    public var fixes: [String]
    /// Warnings (rule S1: migration traffic allowed on any network).
    public var warnings: [OutcomeWarning]
    /// Every rule the engine checked or applied for this action.
    public var rulesExercised: [String]
    /// Whether the environment changed (refused actions never change it).
    public var changedWorld: Bool
    /// For a `moves` step: one outcome per move, in order.
    public var parts: [ActionOutcome]

    public init(result: Expectation.Result, status: WindowsStatus? = nil, rule: String? = nil, stage: String? = nil,
                message: String? = nil, explanation: String? = nil, fixes: [String] = [],
                warnings: [OutcomeWarning] = [], rulesExercised: [String] = [], changedWorld: Bool = false,
                parts: [ActionOutcome] = []) {
        self.result = result
        self.status = status
        self.rule = rule
        self.stage = stage
        self.message = message
        self.explanation = explanation
        self.fixes = fixes
        self.warnings = warnings
        self.rulesExercised = rulesExercised
        self.changedWorld = changedWorld
        self.parts = parts
    }

    /// Differences from `expected` (empty when it matches). Only the fields the expectation sets count.
    public func differences(from expected: Expectation) -> [String] {
        var d: [String] = []
        if result != expected.result { d.append("result: expected \(expected.result.rawValue), got \(result.rawValue)") }
        if let s = expected.status, s.value != status?.code {
            d.append("error: expected \(s), got \(status.map { StatusCode($0.code).description } ?? "none")")
        }
        if let r = expected.rule, r != rule, !relatedRules.contains(r) {
            d.append("rule: expected \(r), got \(([rule].compactMap { $0 } + relatedRules).joined(separator: "+").nilIfEmpty ?? "none")")
        }
        if let s = expected.stage, s != stage { d.append("stage: expected \(s), got \(stage ?? "none")") }
        if let t = expected.text, t != message {
            d.append("text: expected \"\(t)\", got \(message.map { "\"\($0)\"" } ?? "none")")
        }
        for w in expected.warnings where !warnings.contains(where: { $0.rule == w }) {
            d.append("warnings: expected \(w), got \(warnings.isEmpty ? "none" : warnings.map(\.rule).joined(separator: ", "))")
        }
        return d
    }
}

/// A warning attached to an accepted action (S1).
public struct OutcomeWarning: Sendable, Hashable, Codable {
    public var rule: String
    public var text: String
    public init(rule: String, text: String) {
        self.rule = rule
        self.text = text
    }
}

/// Everything that blocks a move, from ``SimulatedEnvironment/diagnose(_:)``.
public struct MoveDiagnosis: Sendable, Hashable, Codable {
    public var request: MoveSpec
    /// True when nothing blocks the move (it may still be queued, rule N2).
    public var wouldSucceed: Bool
    /// What `move` would report now (the first blocking rule decides it).
    public var outcome: ActionOutcome
    /// Every blocking rule, each with its status, stage, explanation and fix.
    public var blockers: [ActionOutcome]
    /// Warnings that would apply (S1).
    public var warnings: [OutcomeWarning]
    /// What the diagnosis assumed that the world did not say (`--signed-on`: a sign-on; the VM on `--from`).
    public var assumptions: [String] = []
    /// When the move would fail: the changes that make it succeed, checked in the simulator, or
    /// the rules that make it impossible.
    public var plan: FixPlan? = nil

    public init(request: MoveSpec, wouldSucceed: Bool, outcome: ActionOutcome, blockers: [ActionOutcome],
                warnings: [OutcomeWarning], assumptions: [String] = []) {
        self.assumptions = assumptions
        self.request = request
        self.wouldSucceed = wouldSucceed
        self.outcome = outcome
        self.blockers = blockers
        self.warnings = warnings
    }
}

extension String {
    var nilIfEmpty: String? { isEmpty ? nil : self }
}
