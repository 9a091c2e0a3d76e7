import Foundation
import RealScenario
import TestRealm
import Testing

/// `migauth scenario run --real` keeps users' passwords, keytabs, the KDC stash and the LDAP root
/// password in its realm directory: an interrupted run must not leave them behind (issue 15).
@Suite("Interrupted real runs leave no realm directory")
struct InterruptedRunTests {
    /// A scenario that keeps the real side busy long enough to be interrupted mid-run: 80 real moves after the
    /// realm is up (three finished before the test's first look in a full parallel run on two cores).
    static let scenario = head + String(repeating: "  - move: {user: alice, on: TestServer01, vm: VM1, to: TestServer02}\n", count: 80)
    static let head = """
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

        """

    struct Lab {
        let tmp: String
        let file: String
        func realmDirectories() -> [String] { Self.realmDirectories(in: tmp) }
        static func realmDirectories(in tmp: String) -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: tmp)) ?? []).filter { $0.hasPrefix("testrealm-") }
        }
        func start(_ name: String) async throws -> ChildProcess {
            try await ChildProcess(executable: RealTestPaths.migauth, arguments: ["scenario", "run", "--real", file],
                             environment: ["TMPDIR": tmp, "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"],
                             standardOutputPath: tmp + "/../\(name).out", standardErrorPath: tmp + "/../\(name).err")
        }
        /// Waits until the run's realm is up, carries its owner record and its hosts are laid out (the password
        /// files' place), then sends
        /// `signal` at once. The watch runs on its own thread: in a full parallel run the cooperative pool can be
        /// starved for seconds, long enough for the whole run to finish unseen.
        func waitForRealm(_ run: ChildProcess, name: String, thenSend signal: Int32? = nil) async throws -> String {
            let tmp = self.tmp
            let found = await Self.watch(run, thenSend: signal) {
                guard let dir = Lab.realmDirectories(in: tmp).first,
                      FileManager.default.fileExists(atPath: tmp + "/" + dir + "/hosts/testserver01/host.json"),
                      FileManager.default.fileExists(atPath: tmp + "/" + dir + "/.testrealm-owner") else { return nil }
                return dir
            }
            guard let found else {
                throw TestRealmError.invalidArgument("the run's realm directory did not appear: " + report(run, name: name))
            }
            return found
        }
        /// Polls `condition` every 5 ms on a new thread until it gives a value (then sends `signal` to `run`), `run`
        /// has ended, or 60 s have passed.
        static func watch(_ run: ChildProcess, thenSend signal: Int32?,
                          _ condition: @escaping @Sendable () -> String?) async -> String? {
            await withCheckedContinuation { (continuation: CheckedContinuation<String?, Never>) in
                let thread = Thread {
                    let deadline = Date().addingTimeInterval(60)
                    while Date() < deadline {
                        if let value = condition() {
                            if let signal { run.send(signal) }
                            continuation.resume(returning: value)
                            return
                        }
                        guard run.isRunning else { break }
                        usleep(5_000)
                    }
                    continuation.resume(returning: nil)
                }
                thread.start()
            }
        }
        /// How the run ended (or that it is still running) and the tail of its stderr, for a failure message.
        func report(_ run: ChildProcess, name: String) -> String {
            let state = run.exitState.map { "exited (status \($0.status), signaled \($0.signaled))" } ?? "still running"
            let stderr = (try? String(contentsOfFile: tmp + "/../\(name).err", encoding: .utf8)) ?? "(no stderr)"
            let stdout = (try? String(contentsOfFile: tmp + "/../\(name).out", encoding: .utf8)) ?? "(no stdout)"
            return state + "; directories " + realmDirectories().description + "; stderr: " + String(stderr.suffix(2000))
                + "; stdout: " + String(stdout.suffix(2000))
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
        let run = try await lab.start("run")
        let dir = try await lab.waitForRealm(run, name: "run", thenSend: signal)
        #expect(!dir.isEmpty)
        let end = await run.wait()
        #expect(end.signaled && end.status == signal, "\(end)")
        #expect(lab.realmDirectories().isEmpty, "\(lab.realmDirectories())")
    }

    @Test("SIGKILL mid-run leaves the directory; the next run removes it (and says so) and keeps a live run's")
    func nextRunRemovesWhatAKilledRunLeft() async throws {
        let (lab, base) = try Self.makeLab()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let killed = try await lab.start("killed")
        let dir = try await lab.waitForRealm(killed, name: "killed", thenSend: SIGKILL)
        _ = await killed.wait()
        #expect(lab.realmDirectories() == [dir])
        #expect(FileManager.default.fileExists(atPath: lab.tmp + "/" + dir + "/hosts/testserver01/host.json"))
        // The next run removes it before it starts its own realm, and says so on stderr.
        let next = try await lab.start("next")
        let nextDir = try await Self.waitForAnother(lab, besides: dir, run: next)
        #expect(lab.realmDirectories() == [nextDir])
        let stderr = (try? String(contentsOfFile: lab.tmp + "/../next.err", encoding: .utf8)) ?? ""
        #expect(stderr.contains("removed \(lab.tmp)/\(dir): left by an earlier real run that was killed"), "\(stderr)")
        // A sweep while that run is alive keeps its directory.
        #expect(TestRealm.removeStaleDirectories(in: lab.tmp).isEmpty)
        #expect(lab.realmDirectories() == [nextDir])
        next.send(SIGTERM)
        next.send(SIGCONT)
        _ = await next.wait()
        #expect(lab.realmDirectories().isEmpty)
    }

    static func waitForAnother(_ lab: Lab, besides old: String, run: ChildProcess) async throws -> String {
        let tmp = lab.tmp
        // Stopped (SIGSTOP) as soon as its realm is up, so that it is still alive, and its directory there, for the
        // checks that follow however long they take.
        let found = await Lab.watch(run, thenSend: SIGSTOP) {
            guard let dir = Lab.realmDirectories(in: tmp).first(where: { $0 != old }),
                  FileManager.default.fileExists(atPath: tmp + "/" + dir + "/.testrealm-owner") else { return nil }
            return dir
        }
        guard let found else {
            throw TestRealmError.invalidArgument("the second run's realm directory did not appear: " + lab.report(run, name: "next"))
        }
        return found
    }
}
