import Directory
import Foundation
import Scenario
import Testing

/// Damaged versions of a real fixture never crash the reader: each is either a valid scenario
/// or a ScenarioError pointing inside the file.
@Suite struct MalformedInputTests {
    static let fixture = "a1-a2-a2b-a3-a4-a5-a6-a7-every-way-to-0x8009030E.yaml"

    /// Reads (and runs) `text`; true when it was refused with a ScenarioError inside the file.
    @discardableResult
    func check(_ text: String, lineCount: Int) -> Bool {
        do {
            let s = try Scenario(yaml: text, file: "damaged.yaml", baseDirectory: TestPaths.fixtures.path)
            _ = s.run()
            return false
        } catch {
            #expect(error.file == "damaged.yaml")
            if let line = error.line { #expect(line >= 1 && line <= lineCount + 1, "\(error)") }
            #expect(!error.message.isEmpty)
            return true
        }
    }

    @Test func everyLineDeleted() throws {
        let text = try String(contentsOf: TestPaths.fixtures.appendingPathComponent(Self.fixture), encoding: .utf8)
        let lines = text.components(separatedBy: "\n")
        var errors = 0
        for i in lines.indices {
            var copy = lines
            copy.remove(at: i)
            do { _ = try Scenario(yaml: copy.joined(separator: "\n"), file: "damaged.yaml") } catch { errors += 1 }
            check(copy.joined(separator: "\n"), lineCount: copy.count)
        }
        #expect(errors > lines.count / 4, "deleting lines should usually break the scenario")
    }

    @Test func truncatedAnywhere() throws {
        let text = try String(contentsOf: TestPaths.fixtures.appendingPathComponent(Self.fixture), encoding: .utf8)
        let chars = Array(text)
        var refused = 0, cuts = 0
        for cut in stride(from: 0, to: chars.count, by: 97) {
            let prefix = String(chars[..<cut])
            if check(prefix, lineCount: prefix.components(separatedBy: "\n").count) { refused += 1 }
            cuts += 1
        }
        #expect(check("", lineCount: 1), "an empty file is not a scenario")
        #expect(!check(text, lineCount: text.components(separatedBy: "\n").count), "the undamaged fixture reads")
        #expect(refused > 0 && refused <= cuts)
    }

    @Test func indentationShifted() throws {
        let text = try String(contentsOf: TestPaths.fixtures.appendingPathComponent(Self.fixture), encoding: .utf8)
        let lines = text.components(separatedBy: "\n")
        var refused = 0
        for i in stride(from: 0, to: lines.count, by: 3) {
            var copy = lines
            copy[i] = " " + copy[i]
            if check(copy.joined(separator: "\n"), lineCount: copy.count) { refused += 1 }
        }
        #expect(refused > 0, "shifting a top-level key must break the scenario")
    }
}

/// Durations from scenario files and the command line: huge values are refused, never wrapped.
@Suite struct DurationInputTests {
    @Test(arguments: [
        ("90", 90), ("90s", 90), ("15m", 900), ("10h", 36_000), ("1h30m", 5_400), ("2d", 172_800),
        ("1h 30m", 5_400), ("0", 0), ("0s", 0),
    ] as [(String, Int64)])
    func valid(_ text: String, _ seconds: Int64) {
        #expect(SimDuration(parsing: text)?.seconds == seconds)
    }

    @Test(arguments: ["", " ", "h", "10x", "1.5h", "-5s", "99999999999999999999999h", "9223372036854775807",
                      "2562047788015215h", "400000d", "999999999999999999d1s"])
    func refused(_ text: String) {
        #expect(SimDuration(parsing: text) == nil)
    }

    @Test func scenarioWithHugeAdvanceIsAnErrorNotACrash() throws {
        let yaml = """
            name: overflow
            directory:
              domains:
                - {name: contoso.com, netbios: CONTOSO}
            hosts: []
            steps:
              - advance-clock: 99999999999999999999999h
            """
        #expect(throws: ScenarioError.self) { try Scenario(yaml: yaml, file: "huge.yaml") }
    }
}
