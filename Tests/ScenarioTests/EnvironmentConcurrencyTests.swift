import Foundation
import Scenario
import Testing

/// Issue #15: concurrent writers of one environment file lose nothing, killed writers' temporary files are
/// cleaned, and saving keeps the file's mode and symbolic links.
@Suite(.serialized) struct EnvironmentConcurrencyTests {
    func start(_ arguments: [String]) throws -> Process {
        let p = Process()
        p.executableURL = TestPaths.migauth
        p.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "MIGAUTH_ENV")
        p.environment = env
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    func run(_ arguments: [String]) throws -> Int32 {
        let p = try start(arguments)
        p.waitUntilExit()
        return p.terminationStatus
    }

    func vms(_ path: String, on host: String = "TestServer01") throws -> Set<String> {
        Set(try EnvironmentStore(path: path).load().world.host(host)?.virtualMachines.keys.map { $0 } ?? [])
    }

    @Test("20 concurrent `migauth new-vm` on one file: all succeed and all 20 VMs are there")
    func concurrentWriters() throws {
        try #require(FileManager.default.isExecutableFile(atPath: TestPaths.migauth.path))
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let env = dir.appendingPathComponent("env.json").path
        #expect(try run(["env", "init", "--env", env]) == 0)
        let before = try vms(env)
        let writers = try (0..<20).map { try start(["new-vm", "--env", env, "--host", "TestServer01", "conc\($0)"]) }
        for w in writers { w.waitUntilExit() }
        #expect(writers.allSatisfy { $0.terminationStatus == 0 }, "\(writers.map(\.terminationStatus))")
        let after = try vms(env)
        let expected = Set((0..<20).map { "conc\($0)" })
        #expect(after.subtracting(before).count == 20, "lost updates: only \(after.subtracting(before).sorted())")
        #expect(expected.allSatisfy { name in after.contains { $0.caseInsensitiveCompare(name) == .orderedSame } })
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["env.json"])
    }

    @Test("saving keeps mode 0600 and writes through a symbolic link")
    func modeAndSymlink() throws {
        try #require(FileManager.default.isExecutableFile(atPath: TestPaths.migauth.path))
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let real = dir.appendingPathComponent("real").appendingPathComponent("env.json").path
        try FileManager.default.createDirectory(atPath: dir.appendingPathComponent("real").path, withIntermediateDirectories: true)
        #expect(try run(["env", "init", "--env", real]) == 0)
        #expect(chmod(real, 0o600) == 0)
        let link = dir.appendingPathComponent("link.json").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "real/env.json")
        #expect(try run(["new-vm", "--env", link, "--host", "TestServer01", "vialink"]) == 0)
        var st = stat()
        #expect(lstat(link, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK, "the symbolic link was replaced")
        #expect(stat(real, &st) == 0 && (st.st_mode & 0o777) == 0o600, "mode \(String(st.st_mode & 0o777, radix: 8))")
        #expect(try vms(real).contains { $0.caseInsensitiveCompare("vialink") == .orderedSame })
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("real").path) == ["env.json"])
    }

    @Test("temporary files of killed writers are removed by the next write; a live writer's stay")
    func staleTemporaries() throws {
        try #require(FileManager.default.isExecutableFile(atPath: TestPaths.migauth.path))
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let env = dir.appendingPathComponent("env.json").path
        #expect(try run(["env", "init", "--env", env]) == 0)
        // A pid that no longer runs: a child that has exited.
        let dead = try start(["--help"])
        dead.waitUntilExit()
        let stale = dir.appendingPathComponent(".env.json.tmp-\(dead.processIdentifier)-12345").path
        let live = dir.appendingPathComponent(".env.json.tmp-\(getpid())-999").path
        #expect(FileManager.default.createFile(atPath: stale, contents: Data("torn".utf8)))
        #expect(FileManager.default.createFile(atPath: live, contents: Data("busy".utf8)))
        #expect(try run(["new-vm", "--env", env, "--host", "TestServer01", "cleaner"]) == 0)
        #expect(!FileManager.default.fileExists(atPath: stale))
        #expect(FileManager.default.fileExists(atPath: live))
    }
}
