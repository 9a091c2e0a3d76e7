import Foundation
import RealScenario
import TestRealm
import Testing

/// `migauth scenario run --real` keeps users' passwords, keytabs, the KDC stash and the LDAP root
/// password in its realm directory: an interrupted run must not leave them behind (issue 15).
@Suite("Interrupted real runs leave no realm directory")
struct InterruptedRunTests {
    /// A scenario that keeps the real side busy long enough to be interrupted mid-run.
    static let scenario = """
        name: interrupted real run
        directory:
          domains: [{name: contoso.com, netbios: CONTOSO}]
          users: [{name: alice}]
        hosts:
          - {name: TestServer01, addresses: [192.168.10.1], local-groups: {Hyper-V Administrators: ['CONTOSO\\alice']}, vms: [VM1],
             settings: {migration-enabled: true, migration-networks: [192.168.10.0/24], authentication-type: Kerberos}}
          - {name: TestServer02, addresses: [192.168.10.2], local-groups: {Hyper-V Administrators: ['CONTOSO\\alice']},
             settings: {migration-enabled: true, migration-networks: [192.168.10.0/24], authentication-type: Kerberos}}
        steps:
          - sign-on: {user: alice, host: TestServer01}
          - move: {user: alice, on: TestServer01, vm: VM1, to: TestServer02}
          - move: {user: alice, on: TestServer01, vm: VM1, to: TestServer02}
          - move: {user: alice, on: TestServer01, vm: VM1, to: TestServer02}
        """

    struct Lab {
        let tmp: String
        let file: String
        func realmDirectories() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: tmp)) ?? []).filter { $0.hasPrefix("testrealm-") }
        }
        func start(_ name: String) throws -> ChildProcess {
            try ChildProcess(executable: RealTestPaths.migauth, arguments: ["scenario", "run", "--real", file],
                             environment: ["TMPDIR": tmp, "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"],
                             standardOutputPath: tmp + "/../\(name).out", standardErrorPath: tmp + "/../\(name).err")
        }
        /// Waits until the run's realm is up and its hosts are laid out (the password files' place).
        func waitForRealm(_ run: ChildProcess) async throws -> String {
            for _ in 0..<600 {
                if let dir = realmDirectories().first,
                   FileManager.default.fileExists(atPath: tmp + "/" + dir + "/hosts/testserver01/host.json") { return dir }
                guard run.isRunning else { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            throw TestRealmError.invalidArgument("the run's realm directory did not appear")
        }
    }

    static func makeLab() throws -> (Lab, String) {
        let base = NSTemporaryDirectory() + "interrupted-" + UUID().uuidString.prefix(8).lowercased()
        let tmp = base + "/tmp"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        let file = base + "/interrupted.yaml"
        try scenario.write(toFile: file, atomically: true, encoding: .utf8)
        return (Lab(tmp: tmp, file: file), base)
    }

    @Test("SIGINT and SIGTERM mid-run: the daemons stop and the realm directory is removed before the process ends", arguments: [SIGINT, SIGTERM])
    func signalCleansUp(_ signal: Int32) async throws {
        let (lab, base) = try Self.makeLab()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let run = try lab.start("run")
        let dir = try await lab.waitForRealm(run)
        #expect(FileManager.default.fileExists(atPath: lab.tmp + "/" + dir + "/.testrealm-owner"))
        run.send(signal)
        let end = await run.wait()
        #expect(end.signaled && end.status == signal, "\(end)")
        #expect(lab.realmDirectories().isEmpty, "\(lab.realmDirectories())")
    }

    @Test("SIGKILL mid-run leaves the directory; the next run removes it (and says so) and keeps a live run's")
    func nextRunRemovesWhatAKilledRunLeft() async throws {
        let (lab, base) = try Self.makeLab()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let killed = try lab.start("killed")
        let dir = try await lab.waitForRealm(killed)
        killed.send(SIGKILL)
        _ = await killed.wait()
        #expect(lab.realmDirectories() == [dir])
        #expect(FileManager.default.fileExists(atPath: lab.tmp + "/" + dir + "/hosts/testserver01/host.json"))
        // The next run removes it before it starts its own realm, and says so on stderr.
        let next = try lab.start("next")
        let nextDir = try await Self.waitForAnother(lab, besides: dir, run: next)
        #expect(lab.realmDirectories() == [nextDir])
        let stderr = (try? String(contentsOfFile: lab.tmp + "/../next.err", encoding: .utf8)) ?? ""
        #expect(stderr.contains("removed \(lab.tmp)/\(dir): left by an earlier real run that was killed"), "\(stderr)")
        // A sweep while that run is alive keeps its directory.
        #expect(TestRealm.removeStaleDirectories(in: lab.tmp).isEmpty)
        #expect(lab.realmDirectories() == [nextDir])
        next.send(SIGTERM)
        _ = await next.wait()
        #expect(lab.realmDirectories().isEmpty)
    }

    static func waitForAnother(_ lab: Lab, besides old: String, run: ChildProcess) async throws -> String {
        for _ in 0..<600 {
            if let dir = lab.realmDirectories().first(where: { $0 != old }),
               FileManager.default.fileExists(atPath: lab.tmp + "/" + dir + "/.testrealm-owner") { return dir }
            guard run.isRunning else { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestRealmError.invalidArgument("the second run's realm directory did not appear")
    }
}
