import Foundation
@testable import CredSSP
@testable import GSS
@testable import MigrationService
import Testing
import TestRealm
import WindowsStatus

/// A pids cgroup the test creates (a unique directory under the pids controller, cgroup v1 or v2): the kernel
/// refuses a new thread to its processes once `pids.max` tasks exist. Removed by ``remove()`` once empty.
struct PidsCgroup {
    let path: String

    /// Where a child group with a `pids.max` can be made, tried in order (v1's controller, then v2's root).
    static let bases = ["/sys/fs/cgroup/pids", "/sys/fs/cgroup"]

    /// Why a pids cgroup cannot be made here (nil: it can): a probe group is made and removed.
    static let unavailable: String? = {
        guard geteuid() == 0 else { return "pids cgroups need root" }
        guard let probe = make(name: "migauth-probe-\(getpid())") else {
            return "no writable pids cgroup controller (tried \(bases.joined(separator: ", ")))"
        }
        probe.remove()
        return nil
    }()

    static func make(name: String) -> PidsCgroup? {
        for base in bases {
            let path = base + "/" + name
            guard mkdir(path, 0o755) == 0 || errno == EEXIST else { continue }
            if FileManager.default.fileExists(atPath: path + "/pids.max") { return PidsCgroup(path: path) }
            rmdir(path)
        }
        return nil
    }

    /// Writes `value` to the group's file `name`.
    func write(_ name: String, _ value: String) throws {
        try value.write(toFile: path + "/" + name, atomically: false, encoding: .utf8)
    }

    /// The tasks (threads) in the group now.
    var current: Int {
        Int((try? String(contentsOfFile: path + "/pids.current", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? -1
    }

    /// Moves every thread of process `pid` into the group.
    func add(process pid: Int32) throws { try write("cgroup.procs", "\(pid)") }

    /// Removes the group once its processes have gone (waits at most 5 s for them).
    func remove() {
        for _ in 0..<100 where rmdir(path) != 0 { usleep(50_000) }
    }
}

/// Issue #15's shutdown hang: a daemon at its thread limit must answer CredSSP connections (not wait for ever),
/// and SIGTERM must still stop it. A real `migauth serve` is put in a pids cgroup capped at the threads it has, so
/// the kernel refuses a new thread until one ends.
@Suite("Thread limit: a daemon that cannot make a thread answers and stops", .serialized, .timeLimit(.minutes(6)),
       .enabled(if: PidsCgroup.unavailable == nil, "\(PidsCgroup.unavailable ?? "")"))
struct ThreadLimitTests {
    /// Threads of process `pid` whose name (`/proc/<pid>/task/*/comm`) `matches`.
    static func threads(of pid: Int32, where matches: (String) -> Bool) -> Int {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.filter {
            (try? String(contentsOfFile: "/proc/\(pid)/task/\($0)/comm", encoding: .utf8))
                .map { matches($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? false
        }.count
    }

    /// Threads of process `pid` named `name`.
    static func threads(of pid: Int32, named name: String) -> Int { threads(of: pid) { $0 == name } }

    /// Threads of process `pid` whose name starts with `prefix`.
    static func threads(of pid: Int32, prefix: String) -> Int { threads(of: pid) { $0.hasPrefix(prefix) } }

    /// Waits at most `limit` for `process` to end; nil if it did not (polled: a task waiting for the exit could
    /// not be cancelled, and a task group would wait for it).
    static func exit(of process: ChildProcess, within limit: Duration) async -> (status: Int32, signaled: Bool)? {
        let deadline = ContinuousClock.now + limit
        while process.exitState == nil, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        return process.exitState
    }

    /// A CredSSP sign-on as a source makes it (hello, TLS + SPNEGO + TSCredentials, the sealing context) to the
    /// daemon whose migration listener is `migration` (`ADDR:PORT` from its READY line).
    static func signOn(_ lab: ServiceLab, to migration: String) async throws -> Result<String, MigrationServiceError> {
        let port = try #require(migration.split(separator: ":").last.flatMap { Int($0) })
        let target = MigrationTarget(fqdn: lab.destinationFQDN, endpoint: try ServiceEndpoint(address: ServiceLab.destinationAddress, port: port),
                                     realm: lab.realmName)
        let name = try target.targetName()
        do throws(MigrationServiceError) {
            let credentials = try await SignOnCredentials.signOn(user: lab.userPrincipal, realm: lab.realmName,
                                                                 password: lab.userPassword, destination: lab.destinationFQDN)
            defer { credentials.wipe() }
            return .success(try await MigrationSource.connect(from: ServiceLab.sourceAddress, to: target) { conn throws(MigrationServiceError) in
                try await CredSSPHandshake.client(conn, purpose: .migration, target: name, signOn: credentials,
                                                  destinationName: lab.destinationFQDN)
            })
        } catch {
            return .failure(error)
        }
    }

    /// The last lines the daemon printed (stdout and stderr), for a failure's message.
    static func output(of daemon: FaultMatrixTests.Daemon) -> String {
        let text = (try? String(contentsOfFile: daemon.output, encoding: .utf8)) ?? "(no output file)"
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(40).joined(separator: "\n")
    }

    /// SIGTERM, then the exit (at most 60 s) and whether `STOPPED` was printed.
    static func terminate(_ daemon: FaultMatrixTests.Daemon) async -> (exit: (status: Int32, signaled: Bool)?, stopped: Bool) {
        daemon.process.send(SIGTERM)
        let exit = await Self.exit(of: daemon.process, within: .seconds(60))
        if exit == nil { daemon.process.send(SIGKILL) }
        let output = (try? String(contentsOfFile: daemon.output, encoding: .utf8)) ?? ""
        return (exit, output.contains("STOPPED"))
    }

    /// Eight CredSSP sign-ons at once.
    static func signOns(_ lab: ServiceLab, to migration: String) async throws -> [Result<String, MigrationServiceError>] {
        try await withThrowingTaskGroup(of: Result<String, MigrationServiceError>.self) { tasks in
            for _ in 0..<8 { tasks.addTask { try await Self.signOn(lab, to: migration) } }
            var results: [Result<String, MigrationServiceError>] = []
            for try await result in tasks { results.append(result) }
            return results
        }
    }

    @Test("at the thread limit CredSSP connections are served on the threads started before READY; with the limit lifted a sign-on works and SIGTERM stops the daemon")
    func credSSPAtTheThreadLimit() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let group = try #require(PidsCgroup.make(name: "migauth-\(lab.suffix)"))
        defer { group.remove() }
        let env = CLITests.environment(lab.realm)
        let file = lab.directory + "/destination.json"
        try HostConfiguration(name: "TestServer02", fqdn: lab.destinationFQDN, address: ServiceLab.destinationAddress,
                              realm: lab.realmName, keytab: lab.destinationKeytab, ccacheDirectory: lab.directory,
                              migrationPort: 0, allowedUsers: [lab.user], incomingNetworks: [IPv4Subnet("127.0.0.12/32")!],
                              vmDirectory: lab.destinationVMs.directory, authenticationType: .credSSP).save(file)
        let daemon = try await FaultMatrixTests.serve(file, lab, env, tag: "destination")
        defer { daemon.process.send(SIGKILL) }  // a no-op once it has ended
        let pid = daemon.process.pid
        // Every thread serving uses runs from READY on (NIO stops the process when it cannot make a pool thread, and a
        // thread made later could take the place of a worker Swift's pool needs back): GSS's KDC pool ("TP-#n"), NIO's
        // blocking pool ("SGLTN-TP-#n") and CredSSP's session threads ("credssp-shared").
        #expect(Self.threads(of: pid, prefix: "TP-#") == GSSBlocking.threadCount, "GSS's thread pool did not start before READY")
        #expect(Self.threads(of: pid, prefix: "SGLTN-TP-#") >= 1, "NIO's blocking pool did not start before READY")
        #expect(Self.threads(of: pid, named: CredSSPSessionThread.sharedName) == CredSSPSessionThread.poolSize,
                "CredSSP's session threads did not start before READY")

        // Phase 1. Capped at the threads it has plus room for the runtime's own workers (2 per core: Swift's cooperative
        // pool and libdispatch's queues make and end theirs as they please, and one that ended must be able to come
        // back — capped at the bare count after 75 s idle, the daemon waited for ever at the first sign-on, a libdispatch
        // retry loop; docs/credssp.md). Eight sign-ons at once share the session threads started before READY and make
        // none: until 2026-12-03 they started on demand, and a session thread could take the place of a worker of
        // Swift's pool, which then never came back (twice in loaded CI runs, at the suite's 6-minute limit).
        try group.add(process: pid)
        let cap = group.current + 2 * ProcessInfo.processInfo.activeProcessorCount
        try group.write("pids.max", "\(cap)")
        let answered = try await Self.signOns(lab, to: daemon.migration)
        #expect(answered.count == 8)
        for result in answered {
            if case .failure(let error) = result {
                Issue.record("a sign-on at the cap failed: \(error)\ndaemon's output:\n\(Self.output(of: daemon))")
            }
            #expect((try? result.get()) == lab.userPrincipal)
        }
        #expect(Self.threads(of: pid, named: CredSSPSessionThread.sharedName) == CredSSPSessionThread.poolSize)
        #expect(daemon.process.exitState == nil, "the daemon ended at its thread limit:\n\(Self.output(of: daemon))")
        // (`group.current <= cap` could not fail: the kernel enforces it.) No pool grew either.
        #expect(Self.threads(of: pid, prefix: "TP-#") == GSSBlocking.threadCount)

        // Phase 2, the control: the same sign-on works once threads can be made again.
        try group.write("pids.max", "max")
        let signedOn = try await Self.signOn(lab, to: daemon.migration)
        if case .failure(let error) = signedOn {
            Issue.record("with the cap lifted the sign-on failed: \(error)\ndaemon's output:\n\(Self.output(of: daemon))")
        }
        #expect((try? signedOn.get()) == lab.userPrincipal)

        // SIGTERM ends the daemon cleanly: every connection's task has ended (before issue 15 a connection whose thread
        // could not be made waited for ever, and SIGTERM with it).
        let stop = await Self.terminate(daemon)
        #expect(stop.exit?.status == 0 && stop.exit?.signaled == false,
                "SIGTERM did not stop the daemon after the sign-ons at its cap: \(String(describing: stop.exit))\ndaemon's output:\n\(Self.output(of: daemon))")
        #expect(stop.stopped)
    }
}
