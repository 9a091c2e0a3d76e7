import Foundation
import Scenario
import Testing

@Suite struct DurableFileTests {
    @Test func replacesTheFileAndLeavesNoTemporaryFiles() throws {
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("env.json").path
        try DurableFile.write(Data("one".utf8), to: path)
        try DurableFile.write(Data("two".utf8), to: path)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "two")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["env.json"])
    }

    @Test func aFailedWriteLeavesTheOldFile() throws {
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("env.json").path
        try DurableFile.write(Data("old".utf8), to: path)
        // Renaming a file over a non-empty directory fails: the target must survive untouched.
        let blocked = dir.appendingPathComponent("blocked")
        try FileManager.default.createDirectory(at: blocked.appendingPathComponent("x"), withIntermediateDirectories: true)
        #expect(throws: DurableFile.IOError.self) { try DurableFile.write(Data("new".utf8), to: blocked.path) }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "old")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["blocked", "env.json"])
    }
}
