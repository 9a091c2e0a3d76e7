import Foundation
import Scenario
import Testing

/// Damaged versions of a real fixture never crash the reader: each is either a valid scenario
/// or a ScenarioError pointing inside the file.
@Suite struct MalformedInputTests {
    static let fixture = "a1-a2-a2b-a3-a4-a5-a6-a7-every-way-to-0x8009030E.yaml"

    func check(_ text: String, lineCount: Int) {
        do {
            let s = try Scenario(yaml: text, file: "damaged.yaml", baseDirectory: TestPaths.fixtures.path)
            _ = s.run()
        } catch {
            #expect(error.file == "damaged.yaml")
            if let line = error.line { #expect(line >= 1 && line <= lineCount + 1, "\(error)") }
            #expect(!error.message.isEmpty)
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
        for cut in stride(from: 0, to: chars.count, by: 97) {
            let prefix = String(chars[..<cut])
            check(prefix, lineCount: prefix.components(separatedBy: "\n").count)
        }
    }

    @Test func indentationShifted() throws {
        let text = try String(contentsOf: TestPaths.fixtures.appendingPathComponent(Self.fixture), encoding: .utf8)
        let lines = text.components(separatedBy: "\n")
        for i in stride(from: 0, to: lines.count, by: 3) {
            var copy = lines
            copy[i] = " " + copy[i]
            check(copy.joined(separator: "\n"), lineCount: copy.count)
        }
    }
}
