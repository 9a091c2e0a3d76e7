import Foundation

/// The result of one step: what was expected, what happened, and whether they agree.
public struct ScenarioStepResult: Sendable, Hashable, Codable {
    /// 1-based position in the timeline.
    public var index: Int
    public var line: Int?
    public var label: String?
    /// A one-line description of the action (`Move-VM VM1 TestServer01 → TestServer02 by alice on TestServer01`).
    public var action: String
    public var expected: [Expectation]
    public var actual: ActionOutcome
    /// Differences, prefixed with the move's number for a `moves` step; empty when it matched.
    public var mismatches: [String]
    public var matched: Bool { mismatches.isEmpty }
}

/// The result of running one scenario.
public struct ScenarioResult: Sendable, Hashable, Codable {
    public var name: String
    public var file: String
    /// The rules the file says it covers.
    public var rules: [String]
    public var steps: [ScenarioStepResult]
    public var passed: Bool { steps.allSatisfy(\.matched) }
    /// Number of steps that did not match.
    public var mismatches: Int { steps.filter { !$0.matched }.count }
    /// Every rule the engine exercised over the run, sorted.
    public var rulesExercised: [String] {
        Set(steps.flatMap { $0.actual.rulesExercised + $0.actual.parts.flatMap(\.rulesExercised) }).sorted(by: Rules.order)
    }

    enum CodingKeys: String, CodingKey { case name, file, rules, steps, passed, mismatches, rulesExercised }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(file, forKey: .file)
        try c.encode(rules, forKey: .rules)
        try c.encode(passed, forKey: .passed)
        try c.encode(mismatches, forKey: .mismatches)
        try c.encode(rulesExercised, forKey: .rulesExercised)
        try c.encode(steps, forKey: .steps)
    }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        file = try c.decode(String.self, forKey: .file)
        rules = try c.decode([String].self, forKey: .rules)
        steps = try c.decode([ScenarioStepResult].self, forKey: .steps)
    }
    public init(name: String, file: String, rules: [String], steps: [ScenarioStepResult]) {
        self.name = name
        self.file = file
        self.rules = rules
        self.steps = steps
    }
}

/// Several scenario files run together (what `migauth scenario run` prints).
public struct ScenarioBatchResult: Sendable, Codable {
    public var results: [ScenarioResult]
    /// Files that could not be loaded.
    public var errors: [ScenarioError]
    public var passed: Bool { errors.isEmpty && results.allSatisfy(\.passed) }

    public init(results: [ScenarioResult], errors: [ScenarioError]) {
        self.results = results
        self.errors = errors
    }

    public var stepCount: Int { results.reduce(0) { $0 + $1.steps.count } }
    public var mismatchCount: Int { results.reduce(0) { $0 + $1.mismatches } }
    public var rulesExercised: [String] { Set(results.flatMap(\.rulesExercised)).sorted(by: Rules.order) }

    enum CodingKeys: String, CodingKey { case passed, scenarios, steps, mismatches, rulesExercised, results, errors }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(passed, forKey: .passed)
        try c.encode(results.count, forKey: .scenarios)
        try c.encode(stepCount, forKey: .steps)
        try c.encode(mismatchCount, forKey: .mismatches)
        try c.encode(rulesExercised, forKey: .rulesExercised)
        try c.encode(results, forKey: .results)
        try c.encode(errors, forKey: .errors)
    }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        results = try c.decode([ScenarioResult].self, forKey: .results)
        errors = try c.decode([ScenarioError].self, forKey: .errors)
    }

    public func jsonString() throws -> String { try JSONOutput.string(self) }
}

/// What `migauth scenario validate --json` prints.
public struct ScenarioValidation: Sendable, Codable {
    public var valid: [String]
    public var errors: [ScenarioError]
    public init(valid: [String], errors: [ScenarioError]) {
        self.valid = valid
        self.errors = errors
    }
    public func jsonString() throws -> String { try JSONOutput.string(self) }
}


extension ActionOutcome {
    public func jsonString() throws -> String { try JSONOutput.string(self) }
}

extension MoveDiagnosis {
    public func jsonString() throws -> String { try JSONOutput.string(self) }
}

enum JSONOutput {
    static func string(_ value: some Encodable) throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try e.encode(value), as: UTF8.self)
    }
}

extension Rules {
    /// Orders rule ids as docs/rules.md lists them.
    public static func order(_ a: String, _ b: String) -> Bool {
        let ia = known.firstIndex(of: a) ?? Int.max
        let ib = known.firstIndex(of: b) ?? Int.max
        return ia != ib ? ia < ib : a < b
    }
}
