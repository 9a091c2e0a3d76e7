import Foundation
import Hosts
@testable import MigrationService
import QEMU
import Synchronization
import Testing
import TestRealm

/// A source in process (its QEMU guest owned by the test) and a destination run as `migauth serve` processes
/// (started, killed and started again by the test).
final class ServedDestinationLab: @unchecked Sendable {
    let lab: ServiceLab
    let vm: String
    let sourceGuests: QEMUGuests
    let source: MigrationSource
    let file: String
    private(set) var daemons: [ChildProcess] = []

    init(vm: String) async throws {
        lab = try await ServiceLab.make()
        self.vm = vm
        let blob = try QEMULab.blob(in: lab.directory, megabytes: 64)
        sourceGuests = QEMULab.guests(lab, "s")
        file = lab.directory + "/destination.json"
        source = try MigrationSource(localAddress: ServiceLab.sourceAddress, vmDirectory: lab.sourceVMs.directory,
                                     hostName: "TestServer01", guests: sourceGuests)
        do {
            try await sourceGuests.start([QEMULab.declaration(vm, blob: blob)])
            try HostConfiguration(
                name: "TestServer02", fqdn: lab.destinationFQDN, address: ServiceLab.destinationAddress, realm: lab.realmName,
                keytab: lab.destinationKeytab, ccacheDirectory: lab.directory, migrationPort: 0,
                allowedUsers: [lab.user], incomingNetworks: [IPv4Subnet("127.0.0.12/32")!],
                vmDirectory: lab.destinationVMs.directory,
                authenticationType: .kerberos,  // Kerberos sign-ons and moves (the default is CredSSP, as in Hyper-V)
                qemu: QEMUHostSettings(binary: QEMULab.binary, runDirectory: lab.directory + "/d")).save(file)
        } catch {
            await stop()
            throw error
        }
    }

    /// Starts the destination daemon: the process, its stdout and stderr paths, and the move's target.
    func serve(_ tag: String) async throws -> (ChildProcess, String, String, MigrationTarget) {
        let out = "\(lab.directory)/\(tag).out", err = "\(lab.directory)/\(tag).err"
        let daemon = try await ChildProcess(executable: CLITests.migauth, arguments: ["serve", "--config", file],
                                      environment: CLITests.environment(lab.realm), standardOutputPath: out,
                                      standardErrorPath: err)
        daemons.append(daemon)
        let ready = try await CLITests.line(in: out, startingWith: "READY ")
        let port = try #require(ready.split(separator: " ").first { $0.hasPrefix("migration=") }?.split(separator: ":").last
            .flatMap { Int($0) })
        return (daemon, out, err, MigrationTarget(fqdn: lab.destinationFQDN,
                                                  endpoint: try ServiceEndpoint(address: ServiceLab.destinationAddress, port: port),
                                                  realm: lab.realmName))
    }

    /// A move that sends `signal` to `daemon` once 16 MiB are sent (`atCommit`: just before `commit` is sent); the
    /// move's error (nil: it succeeded) and whether the signal was sent.
    func move(to target: MigrationTarget, signalling daemon: ChildProcess, _ signal: Int32,
              atCommit: Bool = false) async throws -> (MigrationServiceError?, Bool) {
        let credential = try await lab.userCredential()
        let fired = Mutex(false)
        let options = MoveOptions(chunkSize: 1 << 20, progress: { p in
            let due = atCommit ? p.phase == .committing : p.bytesSent >= 16 << 20
            guard due, fired.withLock({ let was = $0; $0 = true; return !was }) else { return }
            daemon.send(signal)
        })
        do throws(MigrationServiceError) {
            _ = try await source.move(vm: vm, to: target, credential: credential, options: options)
            return (nil, fired.withLock { $0 })
        } catch {
            return (error, fired.withLock { $0 })
        }
    }

    var destinationQEMUs: [Int32] { QEMULab.processes(mentioning: lab.directory + "/d/") }

    func text(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    func stop() async {
        for d in daemons { await d.stop(grace: .seconds(10)) }
        await sourceGuests.stopAll()
        for pid in QEMULab.processes(mentioning: lab.directory) { kill(pid, SIGKILL) }
        lab.remove()
    }
}

/// kill -9 of a daemon process in the middle of a live move, and what the daemon does when it starts again
/// (docs/migration-service.md, "Restart after kill -9").
@Suite("A daemon process killed (kill -9) or stopped (SIGTERM) mid-move; a restarted daemon adopts or stops the QEMUs it left", .serialized,
       .timeLimit(.minutes(5)),
       .enabled(if: QEMULab.available, "qemu-system-x86_64 is not installed (Debian qemu-system-x86)"))
struct DaemonKillTests {
    @Test("kill -9 of the source daemon mid-stream: the guest keeps running at the source only; the restarted daemon adopts that QEMU (same pid, no second QEMU) and can move it")
    func sourceDaemonKilled() async throws {
        try await ServedSourceLab.with { s in
            let (migrate, _, _) = try await s.migrate()
            #expect(await s.waitForEvents(s.moveStarted), "the move reached the destination")
            s.daemon.send(SIGKILL)
            _ = await ServedSourceLab.exit(of: s.daemon, within: 10)
            #expect(await s.waitForEvents(seconds: 30, s.moveFailed), "the destination discarded the move")
            await s.expectNothingAtDestination()
            let orphans = s.sourceQEMUs
            #expect(orphans.count == 1, "the guest's QEMU outlives its daemon: \(orphans)")
            let first = await ServedSourceLab.exit(of: migrate, within: 60)
            await migrate.stop()
            #expect(first?.status == 1)

            let (daemon, _, err, management) = try await s.serveAgain("source-again")
            let pid = try #require(orphans.first)
            let log = await s.text(err, once: "VM \(s.vm): QEMU guest")
            #expect(log.contains("adopted QEMU guest \(s.vm) (pid \(pid))"), "\(log)")
            #expect(log.contains("VM \(s.vm): QEMU guest, running (pid \(pid))"), "running again at the source: \(log)")
            #expect(s.sourceQEMUs == [pid], "no second QEMU of the guest")
            let (again, againOut, againErr) = try await s.migrate(via: management)
            let moved = await ServedSourceLab.exit(of: again, within: 120)
            await again.stop()
            #expect(moved?.status == 0, "\(s.text(againOut)) \(s.text(againErr))")
            let arrived = try #require(s.destinationGuests.process(s.vm))
            #expect(try await arrived.status() == "running")
            #expect(s.sourceQEMUs.isEmpty, "the adopted QEMU was quit after the move")
            daemon.send(SIGTERM)
            #expect(await ServedSourceLab.exit(of: daemon, within: 60)?.status == 0)
        }
    }

    /// Kills the lab's source daemon and puts its orphaned guest where a daemon killed after QEMU completed an
    /// outgoing migration leaves it: paused in `postmigrate`. Returns the QEMU's pid.
    static func leavePostmigrate(_ s: ServedSourceLab) async throws -> Int32 {
        s.daemon.send(SIGKILL)
        _ = await ServedSourceLab.exit(of: s.daemon, within: 10)
        let pid = try #require(s.sourceQEMUs.first)
        let qmp = try await QMPClient.connect(path: s.lab.directory + "/s/\(s.vm).qmp")
        try await qmp.execute("migrate-set-parameters", ["max-bandwidth": .number(Double(8 << 30))])
        try await qmp.execute("migrate", ["uri": .string("exec:cat > /dev/null")])
        var status = ""
        for _ in 0..<600 where status != "postmigrate" {
            try await Task.sleep(for: .milliseconds(50))
            status = (try await qmp.execute("query-status"))["status"]?.string ?? ""
        }
        #expect(status == "postmigrate")
        qmp.close()
        await qmp.closed()
        return pid
    }

    @Test("a guest whose daemon died after QEMU completed an outgoing migration but before it sent `commit` (no record in the journal) is adopted and resumed: its destination never resumed it")
    func postmigrateWithoutCommitResumed() async throws {
        try await ServedSourceLab.with { s in
            let pid = try await Self.leavePostmigrate(s)
            let (daemon, _, err, _) = try await s.serveAgain("source-again")
            let log = await s.text(err, once: "VM \(s.vm): QEMU guest")
            #expect(log.contains("adopted QEMU guest \(s.vm) (pid \(pid)), postmigrate; its migration had completed but its commit was never sent"), "\(log)")
            #expect(log.contains("VM \(s.vm): QEMU guest, running (pid \(pid))"), "\(log)")
            #expect(s.sourceQEMUs == [pid], "no second QEMU of the guest")
            daemon.send(SIGTERM)
            #expect(await ServedSourceLab.exit(of: daemon, within: 60)?.status == 0)
        }
    }

    @Test("a guest left in postmigrate with the record of a `commit` sent, whose destination cannot answer, is adopted paused and uncertain, never resumed or restarted; a move of it is refused (P3); SIGTERM leaves it paused")
    func postmigrateAdoptedUncertain() async throws {
        try await ServedSourceLab.with { s in
            let pid = try await Self.leavePostmigrate(s)
            // The record the killed daemon wrote before its `commit`, naming a destination that refuses connections.
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            inet_pton(AF_INET, ServiceLab.destinationAddress, &address.sin_addr)
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
            }
            let closedPort = Int(UInt16(bigEndian: address.sin_port))
            close(fd)
            let target = MigrationTarget(fqdn: s.lab.destinationFQDN,
                                         endpoint: try ServiceEndpoint(address: ServiceLab.destinationAddress, port: closedPort),
                                         realm: s.lab.realmName)
            let id = MigrationID.random()
            _ = try LiveMoveJournal(vmDirectory: s.lab.sourceVMs.directory).write(vm: s.vm, id: id, to: target)

            let (daemon, _, err, management) = try await s.serveAgain("source-again")
            let log = await s.text(err, once: "VM \(s.vm): QEMU guest")
            #expect(log.contains("adopted QEMU guest \(s.vm) (pid \(pid)), postmigrate; its last move (migration \(id) to \(s.lab.destinationFQDN)) is uncertain: it stays paused"), "\(log)")
            #expect(log.contains("VM \(s.vm): QEMU guest, postmigrate (pid \(pid))"), "\(log)")
            #expect(s.sourceQEMUs == [pid], "no second QEMU of the guest")
            let asked = await s.text(err, once: "could not tell its outcome yet")
            #expect(asked.contains("uncertain move of '\(s.vm)' (migration \(id)): \(s.lab.destinationFQDN) could not tell its outcome yet"), "\(asked)")
            let (again, _, againErr) = try await s.migrate(via: management)
            let refused = await ServedSourceLab.exit(of: again, within: 60)
            await again.stop()
            #expect(refused?.status == 1)
            #expect(s.text(againErr).contains("is not running on host TestServer01"), "\(s.text(againErr))")
            #expect(await s.destination.events().isEmpty, "nothing reached the destination")
            // Shutdown leaves the uncertain guest paused for the operator (and the next start asks again).
            daemon.send(SIGTERM)
            #expect(await ServedSourceLab.exit(of: daemon, within: 60)?.status == 0)
            #expect(s.text(err).contains("its last move is uncertain, so its QEMU (pid \(pid)"), "\(s.text(err))")
            #expect(s.sourceQEMUs == [pid], "still there, paused")
            #expect(LiveMoveJournal(vmDirectory: s.lab.sourceVMs.directory).record(of: s.vm) != nil, "the record stays for the next start")
        }
    }

    @Test("kill -9 of the destination daemon mid-stream: the guest keeps running at the source only; the restarted destination leaves no QEMU or socket of the move and takes the guest")
    func destinationDaemonKilled() async throws {
        let d = try await ServedDestinationLab(vm: "killed-dst")
        do {
            let (first, _, _, target) = try await d.serve("destination")
            let (failure, fired) = try await d.move(to: target, signalling: first, SIGKILL)
            #expect(fired, "the daemon was killed mid-stream")
            #expect(failure != nil && failure?.kind != .uncertain, "\(String(describing: failure))")
            #expect(try await d.sourceGuests.process(d.vm)?.status() == "running", "the guest runs at the source")
            _ = await ServedSourceLab.exit(of: first, within: 10)

            // Restarted: whatever the killed daemon left of the move (its incoming QEMU, sockets) is gone.
            let (second, _, secondErr, target2) = try await d.serve("destination-again")
            let deadline = ContinuousClock.now + .seconds(10)
            while !d.destinationQEMUs.isEmpty, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
            #expect(d.destinationQEMUs.isEmpty, "no QEMU of the killed move")
            let left = (try? FileManager.default.contentsOfDirectory(atPath: d.lab.directory + "/d")) ?? []
            #expect(!left.contains { $0.hasSuffix(".sock") || $0.hasSuffix(".qmp") }, "sockets left: \(left)")
            let report = try await d.source.move(vm: d.vm, to: target2, credential: try await d.lab.userCredential())
            #expect(report.vm == d.vm)
            #expect(await d.sourceGuests.list().isEmpty, "the guest left the source")
            #expect(d.destinationQEMUs.count == 1)
            second.send(SIGTERM)
            #expect(await ServedSourceLab.exit(of: second, within: 60)?.status == 0)
            #expect(d.text(secondErr).contains("stopping VM \(d.vm): QEMU guest, running"), "\(d.text(secondErr))")
        } catch {
            await d.stop()
            throw error
        }
        await d.stop()
    }

    @Test("kill -9 of the destination daemon in the commit window: the source stays paused and reports the move uncertain; the restarted destination stops the never-resumed QEMU; resumed at the source, the guest runs there only")
    func destinationDaemonKilledAtCommit() async throws {
        let d = try await ServedDestinationLab(vm: "commit-dst")
        do {
            let (first, _, _, target) = try await d.serve("destination")
            let (failure, fired) = try await d.move(to: target, signalling: first, SIGKILL, atCommit: true)
            #expect(fired, "killed at the commit")
            #expect(failure?.kind == .uncertain, "\(String(describing: failure))")
            let guest = try #require(d.sourceGuests.process(d.vm))
            #expect(try await guest.status() == "postmigrate", "paused at the source, never resumed there")
            #expect(d.sourceGuests.uncertain == [d.vm])
            _ = await ServedSourceLab.exit(of: first, within: 10)
            #expect(d.destinationQEMUs.count == 1, "the killed daemon's incoming QEMU (loaded, paused) is left")
            let (second, _, secondErr, _) = try await d.serve("destination-again")
            #expect(d.destinationQEMUs.isEmpty, "the restarted destination stopped it: \(d.text(secondErr))")
            #expect(d.text(secondErr).contains("stopped the incoming QEMU of '\(d.vm)'"), "\(d.text(secondErr))")
            // What the uncertain error says to do when the destination does not run it: resume it here.
            try await guest.qmp.execute("cont")
            #expect(try await guest.status() == "running")
            second.send(SIGTERM)
            #expect(await ServedSourceLab.exit(of: second, within: 60)?.status == 0)
        } catch {
            await d.stop()
            throw error
        }
        await d.stop()
    }

    @Test("SIGTERM of the destination daemon mid-stream: it aborts the incoming move at once and exits 0; the guest keeps running at the source only")
    func destinationDaemonTerminated() async throws {
        let d = try await ServedDestinationLab(vm: "term-dst")
        do {
            let (daemon, out, err, target) = try await d.serve("destination")
            let (failure, fired) = try await d.move(to: target, signalling: daemon, SIGTERM)
            #expect(fired, "SIGTERM mid-stream")
            #expect(failure != nil && failure?.kind != .uncertain, "\(String(describing: failure))")
            let exited = await ServedSourceLab.exit(of: daemon, within: 30)
            #expect(exited?.status == 0 && exited?.signaled == false, "\(String(describing: exited)) \(d.text(err))")
            #expect(d.text(out).contains("STOPPING") && d.text(out).contains("STOPPED"))
            #expect(try await d.sourceGuests.process(d.vm)?.status() == "running", "the guest runs at the source")
            #expect(d.destinationQEMUs.isEmpty, "no QEMU at the destination")
            #expect(!d.text(err).contains("stopping VM \(d.vm)"), "the destination never had the guest")
        } catch {
            await d.stop()
            throw error
        }
        await d.stop()
    }
}
