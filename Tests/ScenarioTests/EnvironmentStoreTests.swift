import Foundation
import Scenario
import Testing

@Suite struct EnvironmentStoreTests {
    @Test func saveAndLoadRoundTrip() throws {
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = EnvironmentStore(path: dir.appendingPathComponent("env.json").path)
        var env = SimulatedEnvironment.seedWorld()
        #expect(env.apply(.enableMigration(host: "TestServer01")).result == .success)
        try store.save(env)
        #expect(try store.load() == env)
    }

    /// A crash after the temporary file was written but before the rename leaves a stray
    /// temporary file: the environment file is still the old one, and the next save works.
    @Test func aCrashBeforeTheRenameLosesNothing() throws {
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("env.json").path
        let store = EnvironmentStore(path: path)
        let old = SimulatedEnvironment.seedWorld()
        try store.save(old)
        try Data("{\"format\":\"migauth-env/1\",\"environ".utf8)
            .write(to: dir.appendingPathComponent(".env.json.tmp-1-2"))
        #expect(try store.load() == old)
        var new = old
        _ = new.apply(.restart(host: "TestServer02"))
        try store.save(new)
        #expect(try store.load() == new)
    }

    /// docs/cli.md: a bad environment file's message names the file, the line and column, and the field.
    @Test func aMalformedFileNamesLineColumnAndField() throws {
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("env.json").path
        let store = EnvironmentStore(path: path)
        try store.save(SimulatedEnvironment.seedWorld())
        let good = try String(contentsOfFile: path, encoding: .utf8)
        // A syntax error on line 2.
        try "{\n  \"format\": \"migauth-env/1\",, \n}".write(toFile: path, atomically: true, encoding: .utf8)
        var error = #expect(throws: EnvironmentStore.StoreError.self) { try store.load() }
        #expect(error?.problem?.line == 2, "\(String(describing: error))")
        #expect(error?.problem?.column != nil)
        #expect(error?.description.hasPrefix("\(path):2:") == true, "\(String(describing: error))")
        // A wrong type deep inside the saved file: the first `true` made a string.
        let lines = good.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let target = try #require(lines.firstIndex { $0.contains(": true") })
        var changed = lines
        changed[target] = lines[target].replacingOccurrences(of: ": true", with: ": \"yes\"")
        try changed.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        error = #expect(throws: EnvironmentStore.StoreError.self) { try store.load() }
        let column = try #require(lines[target].range(of: ": true")).upperBound.utf16Offset(in: lines[target]) - 4 + 1
        #expect(error?.problem?.line == target + 1, "\(String(describing: error))")
        #expect(error?.problem?.column == column, "\(String(describing: error))")
        let key = lines[target].trimmingCharacters(in: .whitespaces).split(separator: "\"")[0]
        #expect(error?.problem?.field?.hasSuffix(String(key)) == true, "\(String(describing: error))")
        #expect(error?.problem?.field?.hasPrefix("environment") == true, "\(String(describing: error))")
        #expect(error?.description.hasPrefix("\(path):\(target + 1):\(column): field environment") == true,
                "\(String(describing: error))")
    }

    @Test func aDamagedFileIsAnErrorNotAnEmptyWorld() throws {
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("env.json").path
        try Data("{\"format\":\"migauth-env/1\",\"environ".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: EnvironmentStore.StoreError.self) { try EnvironmentStore(path: path).load() }
        #expect(throws: EnvironmentStore.StoreError.self) {
            try EnvironmentStore(path: dir.appendingPathComponent("missing.json").path).load()
        }
    }

    @Test func defaultPathFollowsMIGAUTH_ENV() {
        #expect(EnvironmentStore.defaultPath(environment: [:]) == ".migauth-env.json")
        #expect(EnvironmentStore.defaultPath(environment: ["MIGAUTH_ENV": "/x/e.json"]) == "/x/e.json")
        #expect(EnvironmentStore.defaultPath(environment: ["MIGAUTH_ENV": ""]) == ".migauth-env.json")
    }
}
