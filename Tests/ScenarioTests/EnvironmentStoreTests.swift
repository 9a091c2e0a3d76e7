import Foundation
import Scenario
import Testing

@Suite struct EnvironmentStoreTests {
    @Test func saveAndLoadRoundTrip() throws {
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = EnvironmentStore(path: dir.appendingPathComponent("env.json").path)
        var env = Environment.seedWorld()
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
        let old = Environment.seedWorld()
        try store.save(old)
        try Data("{\"format\":\"migauth-env/1\",\"environ".utf8)
            .write(to: dir.appendingPathComponent(".env.json.tmp-1-2"))
        #expect(try store.load() == old)
        var new = old
        _ = new.apply(.restart(host: "TestServer02"))
        try store.save(new)
        #expect(try store.load() == new)
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
