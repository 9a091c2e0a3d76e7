import Foundation
import Testing
@testable import TestRealm

/// Programs started through the fixture react to SIGTERM and can be awaited.
@Suite struct LaunchTests {
    @Test func launchedServerStopsOnSIGTERM() async throws {
        let realm = try await TestRealm.start()
        try await realm.addPrincipal("gsstest/hosta.test")
        let keytab = try await realm.exportKeytab(["gsstest/hosta.test"])
        let port = try LoopbackPort.free()
        let output = realm.directory + "/gss-server.out"
        let server = try await realm.launch("/usr/bin/gss-server",
                                      ["-port", "\(port)", "-keytab", keytab, "gsstest@hosta.test"],
                                      outputPath: output)
        #expect(server.isRunning)
        #expect(kill(server.pid, 0) == 0)
        // A long grace: if SIGTERM were blocked in the child, stop() would need SIGKILL (status 9).
        await server.stop(grace: .seconds(30))
        let exit = try #require(server.exitState)
        #expect(exit.signaled && exit.status == SIGTERM, "\(exit)")
        #expect(FileManager.default.fileExists(atPath: output))
        await realm.shutdown()
    }

    @Test func shortProgramExitStatusAndInput() async throws {
        let output = NSTemporaryDirectory() + "/testrealm-cat-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: output) }
        let child = try await ChildProcess(executable: "/bin/cat", arguments: [], environment: [:],
                                     input: Data("hello\n".utf8), standardOutputPath: output)
        let exit = await child.wait()
        #expect(!exit.signaled && exit.status == 0)
        #expect(FileManager.default.contents(atPath: output) == Data("hello\n".utf8))
        let failing = try await ChildProcess(executable: "/bin/false", arguments: [], environment: [:])
        #expect(await failing.wait().status == 1)
        await #expect(throws: TestRealmError.self) {
            _ = try await ChildProcess(executable: "/nonexistent/program", arguments: [], environment: [:])
        }
    }
}
