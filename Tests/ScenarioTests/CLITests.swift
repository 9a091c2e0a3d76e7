import Foundation
import Testing

/// Runs the built `migauth` executable (SwiftPM puts it next to the test bundle).
@Suite(.serialized) struct CLITests {
    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    func migauth(_ arguments: [String], environment: [String: String] = [:], in directory: URL? = nil) throws -> Run {
        let exe = TestPaths.migauth
        try #require(FileManager.default.isExecutableFile(atPath: exe.path),
                     "build migauth first (swift build); looked in \(exe.path)")
        let p = Process()
        p.executableURL = exe
        p.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "MIGAUTH_ENV")
        for (k, v) in environment { env[k] = v }
        p.environment = env
        if let directory { p.currentDirectoryURL = directory }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    @Test func scenarioRunPassesOnTheFixtures() throws {
        let r = try migauth(["scenario", "run", TestPaths.fixtures.path])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("PASS: "))
        #expect(r.stdout.contains(" 0 mismatches"))
    }

    @Test func scenarioRunFailsOnAMismatch() throws {
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = try String(contentsOf: TestPaths.fixtures.appendingPathComponent("a6-round-trip-testserver01-testserver02.yaml"), encoding: .utf8)
        let wrong = source.replacingOccurrences(of: "error: 0x8009030E", with: "result: success\n      #")
        let file = dir.appendingPathComponent("wrong.yaml")
        try wrong.write(to: file, atomically: true, encoding: .utf8)
        let r = try migauth(["scenario", "run", file.path])
        #expect(r.status == 1, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("✗"))
        #expect(r.stdout.contains("FAIL: "))
        let j = try migauth(["scenario", "run", "--json", file.path])
        #expect(j.status == 1)
        let json = try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as? [String: Any]
        #expect(json?["passed"] as? Bool == false)
        #expect(json?["mismatches"] as? Int == 1)
    }

    @Test func anInvalidFileMakesScenarioRunExitWith2() throws {
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("broken.yaml")
        try "name: x\nhosts: [\nsteps: []\n".write(to: file, atomically: true, encoding: .utf8)
        let r = try migauth(["scenario", "run", file.path])
        #expect(r.status == 2)
        #expect(r.stdout.contains("broken.yaml:"), "\(r.stdout)")
        #expect(r.stdout.contains("malformed YAML"))
    }

    @Test func envInitRefusesToOverwriteAndBadOptionsAreUsageErrors() throws {
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let env = ["MIGAUTH_ENV": dir.appendingPathComponent("e.json").path]
        #expect(try migauth(["env", "init"], environment: env).status == 0)
        let again = try migauth(["env", "init"], environment: env)
        #expect(again.status == 2)
        #expect(again.stderr.contains("--force"))
        #expect(try migauth(["set-host", "--host", "TestServer01"], environment: env).status == 64)
        #expect(try migauth(["set-host", "--host", "TestServer01", "--max-migrations", "0"], environment: env).status == 64)
        let unknown = try migauth(["enable-migration", "--host", "TestServer09"], environment: env)
        #expect(unknown.status == 1)
        #expect(unknown.stdout.contains("TestServer09"))
    }

    @Test func scenarioValidateReportsFileLineAndField() throws {
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("bad.yaml")
        try "name: x\ndirectory: {domains: [{name: contoso.com}]}\nsteps:\n  - restart: {hots: A}\nhosts: []\n".write(to: file, atomically: true, encoding: .utf8)
        let r = try migauth(["scenario", "validate", file.path])
        #expect(r.status == 2)
        #expect(r.stdout.contains("bad.yaml:4:"), "\(r.stdout)")
        #expect(r.stdout.contains("steps[0].restart.hots"))
    }

    @Test func persistentStoreRoundTripAndRefusalsChangeNothing() throws {
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let envFile = dir.appendingPathComponent("env.json").path
        let env = ["MIGAUTH_ENV": envFile]
        let scenario = TestPaths.fixtures.appendingPathComponent("a2-kerberos-constrained-delegation.yaml").path

        #expect(try migauth(["env", "init", "--scenario", scenario], environment: env).status == 0)
        #expect(try migauth(["sign-on", "--user", "alice", "--host", "AdminPC"], environment: env).status == 0)

        // Refused: alice is not a Domain Admin (P2). The file must stay byte-identical.
        let before = try Data(contentsOf: URL(fileURLWithPath: envFile))
        let refused = try migauth(["delegation", "add", "--dc", "DC01", "--as", "alice", "--computer", "TestServer01",
                                   "--service", "Microsoft Virtual System Migration Service/TestServer02"], environment: env)
        #expect(refused.status == 1)
        #expect(refused.stdout.contains("0x80072098"), "\(refused.stdout)")
        #expect(refused.stdout.contains("rule:        P2"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: envFile)) == before)

        // A failing move: Hyper-V's two lines, then rule, stage, explanation, fix; file unchanged.
        let move = ["move", "--user", "alice", "--on", "AdminPC", "--vm", "VM1", "--from", "TestServer01", "--to", "TestServer02"]
        let failed = try migauth(move, environment: env)
        #expect(failed.status == 1)
        #expect(failed.stdout.hasPrefix("""
            Virtual machine migration operation failed at migration Source.
            Failed to establish a connection with host TestServer02: No credentials are available in the security package (0x8009030E).

            """), "\(failed.stdout)")
        #expect(failed.stdout.contains("rule:        A2"))
        #expect(failed.stdout.contains("fix:"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: envFile)) == before)

        // The fix, through --env this time, then the move works and is persisted.
        let withFlag = ["--env", envFile]
        #expect(try migauth(["delegation", "add", "--dc", "DC01", "--as", "admin", "--computer", "TestServer01",
                             "--service", "Microsoft Virtual System Migration Service/TestServer02"] + withFlag).status == 0)
        #expect(try migauth(["purge-tickets", "--host", "TestServer01"] + withFlag).status == 0)
        let diag = try migauth(["diagnose", "--user", "alice", "--on", "AdminPC", "--vm", "VM1", "--to", "TestServer02"], environment: env)
        #expect(diag.status == 0, "\(diag.stdout)")
        #expect(try migauth(move, environment: env).status == 0)
        let show = try migauth(["env", "show", "--json"], environment: env)
        #expect(show.stdout.contains("\"vm1\""))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(leftovers == ["env.json"])
    }

    @Test func diagnoseListsEveryBlockingRule() throws {
        let scenario = TestPaths.fixtures.appendingPathComponent("a2-kerberos-constrained-delegation.yaml").path
        let r = try migauth(["diagnose", "--scenario", scenario, "--after-step", "1", "--user", "alice", "--on", "AdminPC", "--vm", "VM1",
                             "--to", "TestServer02"])
        #expect(r.status == 1)
        #expect(r.stdout.contains("Would fail"))
        #expect(r.stdout.contains("A2"))
        #expect(r.stdout.contains("fix:"))
    }

    @Test func envExportLDIFRoundTripsARealExport() throws {
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let samba = TestPaths.root.appendingPathComponent("Fixtures/ldif/samba-contoso-ldbsearch.ldif").path
        let env1 = dir.appendingPathComponent("one.json").path, env2 = dir.appendingPathComponent("two.json").path
        let first = try migauth(["env", "init", "--env", env1, "--ldif", samba])
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        #expect(first.stderr.contains("skipped search reference ldap:///CN=Configuration,DC=contoso,DC=com"), "\(first.stderr)")
        let exported = dir.appendingPathComponent("export.ldif").path
        let export = try migauth(["env", "export-ldif", "--env", env1, "--output", exported])
        #expect(export.status == 0, "\(export.stderr)")
        let second = try migauth(["env", "init", "--env", env2, "--ldif", exported])
        #expect(second.status == 0, "\(second.stderr)")
        let show1 = try migauth(["env", "show", "--env", env1]), show2 = try migauth(["env", "show", "--env", env2])
        #expect(show1.stdout == show2.stdout)
        #expect(show1.stdout.contains("TestServer02"))
        let again = try migauth(["env", "export-ldif", "--env", env2])
        #expect(again.stdout == (try String(contentsOfFile: exported, encoding: .utf8)), "export is a fixpoint")
    }

    @Test func diagnoseWithLDIFEvaluatesEveryRuleWhenTheSignOnIsGiven() throws {
        let ldif = TestPaths.root.appendingPathComponent("Fixtures/ldif/contoso.ldif").path
        let base = ["diagnose", "--ldif", ldif, "--user", "bob", "--vm", "VM1", "--from", "TestServer01", "--to", "TestServer02"]
        let without = try migauth(base)
        #expect(without.status == 1)
        #expect(without.stdout.contains("0x8009030C") || without.stdout.contains("not signed on"), "\(without.stdout)")
        let r = try migauth(base + ["--signed-on", "console"])
        #expect(r.status == 1)
        #expect(r.stdout.contains("assuming: VM1 runs on TestServer01"), "\(r.stdout)")
        #expect(r.stdout.contains("assuming: bob is signed on to TestServer01 by console"), "\(r.stdout)")
        #expect(!r.stdout.contains("0x8009030C"), "\(r.stdout)")
        #expect(r.stdout.contains("P3") && r.stdout.contains("N1"), "\(r.stdout)")
        let bad = try migauth(base + ["--signed-on", "telepathy"])
        #expect(bad.status == 64)
    }
}
