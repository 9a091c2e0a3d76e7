import Foundation
import Hosts
@testable import MigrationService
import QEMU
import Synchronization
import Testing
import TestRealm

/// kill -9 of a daemon process in the middle of a live move, and what the daemon does when it starts again
/// (docs/migration-service.md, "Restart after kill -9").
@Suite("kill -9 of a daemon mid-move; a restarted daemon adopts or stops the QEMUs it left", .serialized,
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
            let log = s.text(err)
            let pid = try #require(orphans.first)
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

    @Test("kill -9 of the destination daemon mid-stream: the guest keeps running at the source only; the restarted destination leaves no QEMU or socket of the move and takes the guest")
    func destinationDaemonKilled() async throws {
        let lab = try await ServiceLab.make()
        let blob = try QEMULab.blob(in: lab.directory, megabytes: 64)
        let vm = "killed-dst"
        let sourceGuests = QEMULab.guests(lab, "s")
        var daemons: [ChildProcess] = []
        defer {
            for d in daemons { d.send(SIGKILL) }
            for pid in QEMULab.processes(mentioning: lab.directory) { kill(pid, SIGKILL) }
            lab.remove()
        }
        try await sourceGuests.start([QEMULab.declaration(vm, blob: blob)])
        let file = lab.directory + "/destination.json"
        try HostConfiguration(
            name: "TestServer02", fqdn: lab.destinationFQDN, address: ServiceLab.destinationAddress, realm: lab.realmName,
            keytab: lab.destinationKeytab, ccacheDirectory: lab.directory, migrationPort: 0,
            allowedUsers: [lab.user], incomingNetworks: [IPv4Subnet("127.0.0.12/32")!],
            vmDirectory: lab.destinationVMs.directory,
            qemu: QEMUHostSettings(binary: QEMULab.binary, runDirectory: lab.directory + "/d")).save(file)
        func serve(_ tag: String) async throws -> (ChildProcess, String, MigrationTarget) {
            let out = "\(lab.directory)/\(tag).out", err = "\(lab.directory)/\(tag).err"
            let daemon = try ChildProcess(executable: CLITests.migauth, arguments: ["serve", "--config", file],
                                          environment: CLITests.environment(lab.realm), standardOutputPath: out,
                                          standardErrorPath: err)
            daemons.append(daemon)
            let ready = try await CLITests.line(in: out, startingWith: "READY ")
            let port = try #require(ready.split(separator: " ").first { $0.hasPrefix("migration=") }?.split(separator: ":").last
                .flatMap { Int($0) })
            return (daemon, err, MigrationTarget(fqdn: lab.destinationFQDN,
                                                 endpoint: try ServiceEndpoint(address: ServiceLab.destinationAddress, port: port),
                                                 realm: lab.realmName))
        }
        let source = try MigrationSource(localAddress: ServiceLab.sourceAddress, vmDirectory: lab.sourceVMs.directory,
                                         hostName: "TestServer01", guests: sourceGuests)
        let credential = try await lab.userCredential()

        let (first, _, target) = try await serve("destination")
        let fired = Mutex(false)
        let options = MoveOptions(chunkSize: 1 << 20, progress: { p in
            guard p.bytesSent >= 16 << 20, fired.withLock({ let was = $0; $0 = true; return !was }) else { return }
            first.send(SIGKILL)
        })
        var failure: MigrationServiceError? = nil
        do throws(MigrationServiceError) {
            _ = try await source.move(vm: vm, to: target, credential: credential, options: options)
        } catch {
            failure = error
        }
        #expect(fired.withLock { $0 }, "the daemon was killed mid-stream")
        #expect(failure != nil && failure?.kind != .uncertain, "\(String(describing: failure))")
        #expect(try await sourceGuests.process(vm)?.status() == "running", "the guest runs at the source")
        _ = await ServedSourceLab.exit(of: first, within: 10)

        // Restarted: whatever the killed daemon left of the move (its incoming QEMU, sockets) is gone.
        let (second, secondErr, target2) = try await serve("destination-again")
        let deadline = ContinuousClock.now + .seconds(10)
        while !QEMULab.processes(mentioning: lab.directory + "/d/").isEmpty, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(QEMULab.processes(mentioning: lab.directory + "/d/").isEmpty, "no QEMU of the killed move")
        let left = (try? FileManager.default.contentsOfDirectory(atPath: lab.directory + "/d")) ?? []
        #expect(!left.contains { $0.hasSuffix(".sock") || $0.hasSuffix(".qmp") }, "sockets left: \(left)")
        let report = try await source.move(vm: vm, to: target2, credential: credential)
        #expect(report.vm == vm)
        #expect(await sourceGuests.list().isEmpty, "the guest left the source")
        #expect(QEMULab.processes(mentioning: lab.directory + "/d/").count == 1)
        second.send(SIGTERM)
        #expect(await ServedSourceLab.exit(of: second, within: 60)?.status == 0)
        let log = (try? String(contentsOfFile: secondErr, encoding: .utf8)) ?? ""
        #expect(log.contains("stopping VM \(vm): QEMU guest, running"), "\(log)")
        await sourceGuests.stopAll()
    }
}
