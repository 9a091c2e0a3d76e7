import Foundation
import MigrationRules

/// A scenario: a world (directory + hosts) and a timeline of steps with expected outcomes.
///
/// Load one from YAML (``init(yaml:file:baseDirectory:)``, ``load(file:)``) or build one in code
/// (``init(name:world:rules:steps:)``, ``append(_:expect:label:)``), then ``run()`` it and inspect
/// each ``ScenarioStepResult``. Loading checks everything (keys, types, names) before anything
/// runs; running never throws — refusals are outcomes, compared with the expectations.
public struct Scenario: Sendable {
    public var name: String
    public var description: String?
    /// Rule ids of docs/rules.md the scenario says it covers.
    public var rules: [String]
    /// The file it came from (`<string>` when built from a string or in code).
    public var file: String
    /// The world before the first step.
    public var world: World
    public var steps: [ScenarioStep]

    /// A scenario built in code.
    public init(name: String, world: World, rules: [String] = [], steps: [ScenarioStep] = []) {
        self.name = name
        self.world = world
        self.rules = rules
        self.steps = steps
        self.file = "<code>"
    }

    /// Parses and checks a scenario from YAML text; `baseDirectory` resolves a relative `ldif:`.
    public init(yaml: String, file: String = "<string>", baseDirectory: String? = nil) throws(ScenarioError) {
        let doc = try ScenarioParser.parse(yaml: yaml, file: file, baseDirectory: baseDirectory)
        self.world = try WorldBuilder.build(doc)
        self.name = doc.name
        self.description = doc.description
        self.rules = doc.rules
        self.file = file
        self.steps = doc.steps
    }

    /// Reads, parses and checks a scenario file.
    public static func load(file path: String) throws(ScenarioError) -> Scenario {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ScenarioError(file: path, message: "cannot read: \(error.localizedDescription)")
        }
        let base = URL(fileURLWithPath: path).deletingLastPathComponent().path
        return try Scenario(yaml: text, file: path, baseDirectory: base)
    }

    /// Adds a step at the end of the timeline.
    public mutating func append(_ action: ScenarioAction, expect: Expectation = .success, label: String? = nil) {
        steps.append(ScenarioStep(action, expect: expect, label: label))
    }

    /// The environment before the first step.
    public func initialEnvironment() -> SimulatedEnvironment { SimulatedEnvironment(world: world, origin: file) }

    /// The environment after running the first `count` steps (whatever their outcomes).
    public func environment(afterSteps count: Int) -> SimulatedEnvironment {
        var env = initialEnvironment()
        for step in steps.prefix(max(0, count)) { _ = env.apply(step.action) }
        return env
    }

    /// Runs every step from the initial world and compares each outcome with its expectation.
    public func run() -> ScenarioResult {
        var env = initialEnvironment()
        var results: [ScenarioStepResult] = []
        for (i, step) in steps.enumerated() {
            let outcome = env.apply(step.action)
            results.append(ScenarioStepResult(index: i + 1, line: step.at?.line, label: step.label,
                                              action: step.action.summary, expected: step.expectations,
                                              actual: outcome, mismatches: Self.compare(step.expectations, outcome)))
        }
        return ScenarioResult(name: name, file: file, rules: rules, steps: results)
    }

    static func compare(_ expected: [Expectation], _ actual: ActionOutcome) -> [String] {
        if actual.parts.isEmpty {
            guard let e = expected.first else { return [] }
            return actual.differences(from: e)
        }
        guard expected.count == actual.parts.count else {
            return ["expected \(expected.count) outcomes, got \(actual.parts.count)"]
        }
        return zip(expected, actual.parts).enumerated().flatMap { i, pair in
            pair.1.differences(from: pair.0).map { "move \(i + 1): \($0)" }
        }
    }
}

/// Finds scenario files.
public enum ScenarioFiles {
    /// Files as given, directories searched (recursively, sorted) for `*.yaml` and `*.yml`.
    public static func expand(_ paths: [String]) throws(ScenarioError) -> [String] {
        var out: [String] = []
        let fm = FileManager.default
        for p in paths {
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: p, isDirectory: &isDir) else {
                throw ScenarioError(file: p, message: "no such file or directory")
            }
            if isDir.boolValue {
                let found = (fm.enumerator(atPath: p)?.compactMap { $0 as? String } ?? [])
                    .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }
                    .sorted()
                    .map { URL(fileURLWithPath: p).appendingPathComponent($0).path }
                out += found.map { p.hasPrefix("/") ? $0 : relative($0) }
            } else {
                out.append(p)
            }
        }
        return out
    }

    private static func relative(_ path: String) -> String {
        let cwd = FileManager.default.currentDirectoryPath + "/"
        return path.hasPrefix(cwd) ? String(path.dropFirst(cwd.count)) : path
    }
}
