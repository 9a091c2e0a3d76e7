import Foundation
import Scenario
import Testing

/// The examples in docs/scenario-format.md work as printed.
@Suite struct DocExampleTests {
    static let doc = (try? String(contentsOf: TestPaths.root.appendingPathComponent("docs/scenario-format.md"), encoding: .utf8)) ?? ""

    /// The text of the first fenced block of `language` after `heading`.
    static func block(after heading: String, language: String) -> String? {
        guard let h = doc.range(of: heading),
              let start = doc.range(of: "```\(language)\n", range: h.upperBound..<doc.endIndex),
              let end = doc.range(of: "\n```", range: start.upperBound..<doc.endIndex) else { return nil }
        return String(doc[start.upperBound..<end.lowerBound])
    }

    @Test func theYAMLExampleRunsWithoutMismatch() throws {
        let yaml = try #require(Self.block(after: "## Example", language: "yaml"))
        let result = try Scenario(yaml: yaml, file: "docs/scenario-format.md").run()
        #expect(result.passed, "\(result.steps.map(\.mismatches))")
        #expect(result.steps.count == 3)
    }

    /// A copy of the Swift example (the test below checks the copy matches the document).
    @Test func roundTripNeedsASignOnAtTheNewSource() throws {
        _ = FileManager.default.changeCurrentDirectoryPath(TestPaths.root.path)
        // From YAML (a string or a file):
        let fromFile = try Scenario.load(file: "Fixtures/scenarios/a6-round-trip-testserver01-testserver02.yaml")
        #expect(fromFile.run().passed)

        // Or in code:
        var scenario = try Scenario(yaml: """
            name: built in code
            directory: {domains: [{name: contoso.com}], users: [{name: alice}]}
            hosts:
              - {name: TestServer01, vms: [VM1], local-groups: {Administrators: [alice]},
                 settings: {migration-enabled: true, use-any-network-for-migration: true}}
              - {name: TestServer02, local-groups: {Administrators: [alice]},
                 settings: {migration-enabled: true, use-any-network-for-migration: true}}
            steps: []
            """)
        scenario.append(.signOn(user: "alice", host: "TestServer01", method: .console, from: nil))
        scenario.append(.move(MoveSpec(user: "alice", startedOn: "TestServer01", vm: "VM1",
                                          destination: "TestServer02")))
        scenario.append(.move(MoveSpec(user: "alice", startedOn: "TestServer01", vm: "VM1",
                                          destination: "TestServer01")),
                        expect: .error(0x8009_030E, rule: "A6", stage: "source"))
        let result = scenario.run()
        #expect(result.passed, "\(result.mismatches)")
        #expect(result.steps[2].actual.status?.code == 0x8009_030E)

        // Step by step, against a live environment:
        var environment = scenario.environment(afterSteps: 1)
        let outcome = environment.apply(.move(MoveSpec(user: "alice", vm: "VM1", destination: "TestServer02")))
        #expect(outcome.result == .success)
    }

    @Test func theSwiftExampleIsTheTestedCopy() throws {
        let example = try #require(Self.block(after: "## Using scenarios from Swift", language: "swift"))
        let source = try String(contentsOf: URL(fileURLWithPath: #filePath), encoding: .utf8)
        let normalize = { (s: String) in
            s.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        // Every statement line of the documented example appears in this file.
        let lines = normalize(example).filter { !$0.hasPrefix("import") && !$0.hasPrefix("@Test") && $0 != "}" }
        let here = Set(normalize(source))
        #expect(!lines.isEmpty)
        for line in lines {
            let found = here.contains(line)
            #expect(found, "doc line not in the tested copy: \(line)")
        }
    }
}
