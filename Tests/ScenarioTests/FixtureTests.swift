import Foundation
import Scenario
import Testing

/// Every scenario in Fixtures/scenarios runs with zero mismatches, and together they cover every rule.
@Suite struct FixtureTests {
    static let files: [String] = (try? ScenarioFiles.expand([TestPaths.fixtures.path])) ?? []

    @Test func fixturesExist() {
        #expect(Self.files.count >= 17, "found \(Self.files.count) fixtures in \(TestPaths.fixtures.path)")
    }

    @Test(arguments: files)
    func fixtureRunsWithoutMismatch(_ path: String) throws {
        let scenario = try Scenario.load(file: path)
        let result = scenario.run()
        #expect(!result.steps.isEmpty)
        let report = ReportFormatter.text(ScenarioBatchResult(results: [result], errors: []))
        #expect(result.passed, "\(report)")
    }

    @Test func fixturesCoverEveryRule() throws {
        var declared = Set<String>()
        var exercised = Set<String>()
        for path in Self.files {
            let s = try Scenario.load(file: path)
            declared.formUnion(s.rules)
            exercised.formUnion(s.run().rulesExercised)
            let base = URL(fileURLWithPath: path).lastPathComponent.lowercased()
            #expect(s.rules.contains { base.contains($0.lowercased()) }, "\(base) names none of its rules \(s.rules)")
        }
        for rule in Rules.known {
            #expect(declared.contains(rule), "no fixture declares \(rule)")
            #expect(exercised.contains(rule), "no fixture exercises \(rule)")
        }
    }

    @Test func atLeastOneFixtureUsesTheLDIFDirectory() throws {
        let texts = try Self.files.map { try String(contentsOfFile: $0, encoding: .utf8) }
        #expect(texts.contains { $0.contains("ldif: ") })
    }
}
