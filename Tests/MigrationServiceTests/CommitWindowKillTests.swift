import Foundation
import GSS
import Hosts
import Logging
@testable import MigrationService
import QEMU
import Testing
import TestRealm

/// Kill -9 of the source daemon or of the destination daemon — two `migauth serve` processes, each owning its
/// QEMUs — in the commit window of a live move of a running guest (issue 15: "on both" means split-brain). A
/// workstation's `migauth migrate --via` asks the source daemon for the move; a ``FaultLink`` (live mode) between
/// the daemons stops it at the phase:
/// - `commitHeld`: the source's guest is paused (`postmigrate`), its `commit` sent but held: the destination,
///   loaded and paused, never gets it;
/// - `commitDelivered`: the destination got `commit` and resumed the guest; its `committed` is swallowed (and,
///   for ``Party/destinationDaemonBeforeCont``, its orphaned QEMU is paused again: the state of a destination
///   killed between its commit record and `cont`).
/// The killed daemon's QEMUs outlive it (no PR_SET_PDEATHSIG: adopted at the next start). After the killed
/// daemon started again and the source learned the outcome from the destination (protocol version 3, the
/// outcome query), with both daemons then killed so the test can ask each QEMU itself over QMP:
/// - the guest runs on exactly one host: exactly one QEMU of the test is left, `running`, on the side the phase
///   decides (held: the source, resumed; delivered: the destination), and its RAM holds the blob;
/// - the paused source QEMU of a committed move was never resumed (it was quit, same pid as adopted);
/// - nothing half-registered: no journal record left at the source, a commit record at the destination
///   exactly when it committed, no incoming socket, no staging file.
@Suite("kill -9 of a daemon in the commit window of a live QEMU move: the guest runs on exactly one host after the restart",
       .serialized, .timeLimit(.minutes(6)),
       .enabled(if: QEMULab.available, "qemu-system-x86_64 is not installed (Debian qemu-system-x86)"))
struct CommitWindowKillTests {
    enum Party: String, Sendable, CaseIterable, CustomStringConvertible {
        case sourceDaemon, destinationDaemon
        /// The destination daemon killed after it recorded the commit and before its `cont`, reproduced: killed
        /// after `cont`, its orphaned QEMU then paused by the test (the same QMP state: loaded, paused, recorded).
        case destinationDaemonBeforeCont
        var description: String { rawValue }
    }

    static let cells: [(Party, FaultLink.Phase)] = [(.sourceDaemon, .commitHeld), (.sourceDaemon, .commitDelivered),
                                                    (.destinationDaemon, .commitHeld), (.destinationDaemon, .commitDelivered),
                                                    (.destinationDaemonBeforeCont, .commitDelivered)]
    /// A small guest: 128 MiB of RAM (TCG), a 16 MiB random blob in it.
    static let memoryMiB = 128
    static let blobMiB = 16
    static let blobAddress: UInt64 = 0x200_0000

    @Test("kill -9 of one daemon in the commit window; restarted, the guest runs on exactly one host and nothing is half-registered",
          arguments: cells)
    func cell(party: Party, phase: FaultLink.Phase) async throws {
        let lab = try await ServiceLab.make()
        let run = Run(lab: lab)
        do {
            try await run.cell(party: party, phase: phase)
        } catch {
            await run.end()
            throw error
        }
        await run.end()
    }

    @Test("an outcome query while the destination still waits for `commit` ends that move there (fenced): the held `commit`, released, never resumes the guest; the resolver then resumes it at the source; only allowed users and hosts of the realm may ask, on protocol version 3 only")
    func queryFencesAWaitingMove() async throws {
        let lab = try await ServiceLab.make()
        let vm = "fenced"
        let blob = try QEMULab.blob(in: lab.directory, megabytes: Self.blobMiB)
        let sourceGuests = QEMULab.guests(lab, "s")
        let destinationGuests = QEMULab.guests(lab, "d")
        let destination = MigrationDestination(configuration: lab.destinationConfiguration(), guests: destinationGuests)
        var link: FaultLink? = nil
        do {
            try await sourceGuests.start([VirtualMachineDeclaration(name: vm, qemu: QEMUMachine(memoryMiB: Self.memoryMiB, extraArguments: [
                "-device", "loader,file=\(blob),addr=0x\(String(Self.blobAddress, radix: 16)),force-raw=on"]))])
            try await destination.start(on: ServiceEndpoint(address: ServiceLab.destinationAddress, port: 0))
            let held = try await FaultLink.start(to: ServiceLab.destinationAddress, port: try requireEndpoint(destination).port,
                                                 phase: .commitHeld, vmSize: 8 << 20, live: true)
            link = held
            let source = try MigrationSource(localAddress: ServiceLab.sourceAddress, vmDirectory: lab.sourceVMs.directory,
                                             hostName: "TestServer01", guests: sourceGuests)
            let target = MigrationTarget(fqdn: lab.destinationFQDN, endpoint: try ServiceEndpoint(address: "127.0.0.1", port: held.port),
                                         realm: lab.realmName)
            let credential = try await lab.userCredential()
            let move = Task { () -> MigrationServiceError? in
                do throws(MigrationServiceError) {
                    _ = try await source.move(vm: vm, to: target, credential: credential, options: MoveOptions(performance: .tcpIP))
                    return nil
                } catch {
                    return error
                }
            }
            var reached = false
            for await _ in held.reached { reached = true; break }
            try #require(reached)
            let record = try #require(LiveMoveJournal(vmDirectory: lab.sourceVMs.directory).record(of: vm),
                                      "the source recorded where its commit went before sending it")

            // Who may ask: not a user outside P1 …
            let other = "other-\(lab.suffix)"
            try await lab.realm.addPrincipal(other, password: lab.userPassword)
            let otherCredential = try GSSCredential.acquire(store: GSSCredentialStore(
                ccache: try await lab.realm.kinit(other, password: lab.userPassword)))
            do throws(MigrationServiceError) {
                _ = try await MigrationSource.queryOutcome(record, from: ServiceLab.sourceAddress, credential: otherCredential,
                                                           suites: ProtectionSuite.preferred)
                Issue.record("a user outside P1 was told an outcome")
            } catch {
                #expect(error.status == .accessDenied, "\(error)")
            }
            // … nor a client that does not speak version 3 (purpose 3 needs it).
            do throws(MigrationServiceError) {
                let name = try target.targetName()
                _ = try await MigrationSource.connect(from: ServiceLab.sourceAddress, to: target) { conn throws(MigrationServiceError) in
                    conn.settings = ProtocolSettings(versions: 1...2)
                    return try await KerberosHandshake.client(conn, purpose: .outcome, target: name, credential: credential,
                                                              destinationName: target.fqdn)
                }
                Issue.record("a version 2 client opened an outcome query")
            } catch {
                #expect(error.status == .revisionMismatch && error.detail.contains("server speaks 3…3"), "\(error)")
            }
            // The source host itself, with its own keys: the move still waits for `commit`, so it is ended there.
            let hostCredential = try GSSCredential.acquire(
                name: GSSName(principal: MigrationServiceNames.hostPrincipal(fqdn: lab.sourceFQDN, realm: lab.realmName)), usage: .initiate,
                store: GSSCredentialStore(ccache: "FILE:\(lab.directory)/host.ccache", clientKeytab: lab.sourceKeytab))
            let first = try await MigrationSource.queryOutcome(record, from: ServiceLab.sourceAddress, credential: hostCredential,
                                                               suites: ProtectionSuite.preferred)
            #expect(first == .notCommitted)
            // The held `commit` goes on now: it must not resume the guest at the destination.
            held.release()
            let failure = await move.value
            #expect(failure?.kind == .uncertain, "\(String(describing: failure))")
            #expect(await destination.waitForEvents(timeout: .seconds(30)) { $0.contains { if case .failed(vm: vm, _, _) = $0 { true } else { false } } },
                    "the destination ended the fenced move")
            #expect(await destination.events().allSatisfy { if case .committed = $0 { false } else { true } }, "committed at the destination")
            #expect(await destinationGuests.list().isEmpty && QEMULab.processes(mentioning: lab.directory + "/d/").isEmpty,
                    "no guest or QEMU at the destination")
            #expect(LiveCommitRecords(vmDirectory: lab.destinationVMs.directory).find(prefix: "") == nil, "no commit recorded")
            #expect(try await MigrationSource.queryOutcome(record, from: ServiceLab.sourceAddress, credential: hostCredential,
                                                           suites: ProtectionSuite.preferred) == .notCommitted, "and it stays so")
            // The source's resolver (what a daemon runs) resumes the guest here: it runs on exactly one host.
            #expect(sourceGuests.uncertain == [vm])
            let configuration = HostConfiguration(
                name: "TestServer01", fqdn: lab.sourceFQDN, address: ServiceLab.sourceAddress, realm: lab.realmName,
                keytab: lab.sourceKeytab, ccacheDirectory: lab.directory, vmDirectory: lab.sourceVMs.directory)
            await OutcomeResolver(configuration: { configuration }, guests: sourceGuests, logger: Logger(label: "test")).resolveDue()
            #expect(try await sourceGuests.process(vm)?.status() == "running")
            #expect(sourceGuests.uncertain.isEmpty && LiveMoveJournal(vmDirectory: lab.sourceVMs.directory).records().isEmpty)
        } catch {
            await link?.close()
            await destination.stop()
            await sourceGuests.stopAll()
            await destinationGuests.stopAll()
            lab.remove()
            throw error
        }
        await link?.close()
        await destination.stop()
        await sourceGuests.stopAll()
        await destinationGuests.stopAll()
        #expect(QEMULab.processes(mentioning: lab.directory).isEmpty)
        lab.remove()
    }

    /// Text of a file (empty if missing).
    static func text(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    /// Waits (at most `seconds`) until the file contains `needle`; its text then.
    static func text(_ path: String, once needle: String, seconds: Double) async -> String {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while !text(path).contains(needle), ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        return text(path)
    }

    /// One cell's processes; `end()` stops what is left (its own children and the QEMUs in its own directories).
    final class Run: @unchecked Sendable {
        let lab: ServiceLab
        var daemons: [ChildProcess] = []
        var link: FaultLink?

        init(lab: ServiceLab) { self.lab = lab }

        func serve(_ file: String, _ env: [String: String], tag: String) async throws -> FaultMatrixTests.Daemon {
            let daemon = try await FaultMatrixTests.serve(file, lab, env, tag: tag)
            daemons.append(daemon.process)
            return daemon
        }

        func end() async {
            for d in daemons where d.isRunning { d.send(SIGKILL) }
            for d in daemons { _ = await ServedSourceLab.exit(of: d, within: 10) }
            await link?.close()
            for pid in QEMULab.processes(mentioning: lab.directory) { kill(pid, SIGKILL) }
            lab.remove()
        }

        var sourceQEMUs: [Int32] { QEMULab.processes(mentioning: lab.directory + "/s/") }
        var destinationQEMUs: [Int32] { QEMULab.processes(mentioning: lab.directory + "/d/") }

        func cell(party: Party, phase: FaultLink.Phase) async throws {
            let vm = "cw-\(party)-\(phase)"
            let blob = try QEMULab.blob(in: lab.directory, megabytes: CommitWindowKillTests.blobMiB)
            // The source daemon moves for the user by constrained delegation (S4U2Proxy), as `--via` asks.
            try await lab.realm.setAllowedToDelegate(
                "host/\(lab.sourceFQDN)",
                targets: [MigrationServiceNames.migrationPrincipal(fqdn: lab.destinationFQDN, realm: lab.realmName)])
            let env = CLITests.environment(lab.realm)
            let guest = QEMUMachine(memoryMiB: CommitWindowKillTests.memoryMiB, extraArguments: [
                "-device", "loader,file=\(blob),addr=0x\(String(CommitWindowKillTests.blobAddress, radix: 16)),force-raw=on"])
            let sourceFile = lab.directory + "/source.json"
            try HostConfiguration(
                name: "TestServer01", fqdn: lab.sourceFQDN, address: ServiceLab.sourceAddress, realm: lab.realmName,
                keytab: lab.sourceKeytab, ccacheDirectory: lab.directory, migrationPort: 0, allowedUsers: [lab.user],
                incomingNetworks: [IPv4Subnet("127.0.0.11/32")!], vmDirectory: lab.sourceVMs.directory,
                authenticationType: .kerberos,
                qemu: QEMUHostSettings(binary: QEMULab.binary, runDirectory: lab.directory + "/s"),
                virtualMachines: [VirtualMachineDeclaration(name: vm, qemu: guest)]).save(sourceFile)
            let destinationFile = lab.directory + "/destination.json"
            try HostConfiguration(
                name: "TestServer02", fqdn: lab.destinationFQDN, address: ServiceLab.destinationAddress, realm: lab.realmName,
                keytab: lab.destinationKeytab, ccacheDirectory: lab.directory, migrationPort: 0, allowedUsers: [lab.user],
                incomingNetworks: [IPv4Subnet("127.0.0.12/32")!], vmDirectory: lab.destinationVMs.directory,
                authenticationType: .kerberos,
                qemu: QEMUHostSettings(binary: QEMULab.binary, runDirectory: lab.directory + "/d")).save(destinationFile)

            var destination = try await serve(destinationFile, env, tag: "destination")
            let destinationPort = try #require(destination.migration.split(separator: ":").last.flatMap { Int($0) })
            let link = try await FaultLink.start(to: ServiceLab.destinationAddress, port: destinationPort, phase: phase,
                                                 vmSize: 8 << 20, live: true)
            self.link = link
            var source = try await serve(sourceFile, env, tag: "source")
            let sourcePids = sourceQEMUs
            try #require(sourcePids.count == 1, "the source daemon runs its guest: \(sourcePids)")
            let sourcePid = sourcePids[0]

            let ccache = try await lab.realm.kinit(lab.user, password: lab.userPassword)
            let cliOutput = lab.directory + "/migrate.log"
            let cli = try await ChildProcess(
                executable: CLITests.migauth,
                arguments: ["migrate", "--vm", vm, "--to", lab.destinationFQDN, "--endpoint", "127.0.0.1:\(link.port)",
                            "--ccache", ccache, "--performance", "tcpip", "--via", source.management,
                            "--source-fqdn", lab.sourceFQDN, "--realm", lab.realmName],
                environment: env, standardOutputPath: cliOutput, standardErrorPath: cliOutput)
            daemons.append(cli)

            // The phase (or the CLI ending first, which fails the cell).
            let reached = await withTaskGroup(of: Bool.self) { group in
                group.addTask { for await _ in link.reached { return true }; return false }
                group.addTask {
                    while cli.isRunning, !Task.isCancelled { try? await Task.sleep(for: .milliseconds(20)) }
                    return false
                }
                group.addTask { try? await Task.sleep(for: .seconds(120)); return false }
                defer { group.cancelAll() }
                return await group.next() ?? false
            }
            try #require(reached, "the move never reached \(phase): \(CommitWindowKillTests.text(cliOutput)) \(CommitWindowKillTests.text(source.output))")
            var incomingPid: Int32? = nil
            if phase == .commitDelivered {
                // `commit` arrived: the destination resumes the guest, then answers `committed` (swallowed).
                let log = await CommitWindowKillTests.text(destination.output, once: "live move of '\(vm)' (migration", seconds: 30)
                try #require(log.contains("committed: the guest runs here"), "the destination did not resume the guest: \(log)")
                incomingPid = destinationQEMUs.first
            } else {
                #expect(!CommitWindowKillTests.text(destination.output).contains("live move of '\(vm)' (migration"),
                        "the held commit reached the destination")
            }
            let pausedAt = destinationQEMUs

            // The kill.
            let killed = party == .sourceDaemon ? source.process : destination.process
            killed.send(SIGKILL)
            let state = await killed.wait()
            #expect(state.signaled && state.status == SIGKILL, "\(state)")
            if party == .sourceDaemon {
                #expect(sourceQEMUs == [sourcePid], "the guest's QEMU outlives its killed daemon")
            } else {
                #expect(destinationQEMUs == pausedAt && pausedAt.count == 1, "the incoming QEMU outlives its killed daemon: \(pausedAt)")
                // The source must see the link die (with `committed` swallowed it would wait on).
                await link.cutWatched()
            }
            if party == .destinationDaemonBeforeCont {
                let monitor = try #require(((try? FileManager.default.contentsOfDirectory(atPath: lab.directory + "/d")) ?? [])
                    .first { $0.hasPrefix("in-") && $0.hasSuffix(".qmp") })
                let qmp = try await QMPClient.connect(path: "\(lab.directory)/d/\(monitor)")
                try await qmp.execute("stop")
                #expect((try await qmp.execute("query-status"))["status"]?.string == "paused")
                #expect((try await qmp.execute("query-migrate"))["status"]?.string == "completed")
                qmp.close()
                await qmp.closed()
            }
            let cliState = await ServedSourceLab.exit(of: cli, within: 120)
            let cliText = CommitWindowKillTests.text(cliOutput)
            #expect(cliState?.status == 1, "the CLI reports the failed move: \(String(describing: cliState)) \(cliText)")
            if party != .sourceDaemon {
                #expect(cliText.contains("uncertain"), "the surviving source reports the move uncertain: \(cliText)")
            }

            // The killed daemon starts again and reconciles.
            if party == .sourceDaemon {
                source = try await serve(sourceFile, env, tag: "source-restarted")
                let log = await CommitWindowKillTests.text(source.output, once: "adopted QEMU guest \(vm)", seconds: 30)
                #expect(log.contains("adopted QEMU guest \(vm) (pid \(sourcePid)), postmigrate"), "adopted paused, not restarted: \(log)")
                #expect(log.contains("is uncertain: it stays paused until \(lab.destinationFQDN) tells whether it committed"), "\(log)")
            } else {
                destination = try await serve(destinationFile, env, tag: "destination-restarted")
                let port = try #require(destination.migration.split(separator: ":").last.flatMap { Int($0) })
                link.retarget(port: port)
                let log = CommitWindowKillTests.text(destination.output)
                if phase == .commitHeld {
                    #expect(log.contains("stopped the incoming QEMU of '\(vm)'"), "the never-resumed QEMU is stopped: \(log)")
                    #expect(destinationQEMUs.isEmpty)
                } else if party == .destinationDaemonBeforeCont {
                    #expect(log.contains("adopted QEMU guest \(vm) (pid \(incomingPid ?? -1)), paused; its move (migration ")
                            && log.contains("was committed here before the daemon died, so it was resumed (running)"),
                            "the recorded, paused guest is resumed and adopted: \(log)")
                } else {
                    #expect(log.contains("adopted QEMU guest \(vm) (pid \(incomingPid ?? -1)), running"), "the resumed guest is adopted: \(log)")
                }
            }

            // The source learns the outcome from the destination.
            let outcome = phase == .commitHeld ? "resolved: never committed on \(lab.destinationFQDN)"
                                               : "resolved: committed on \(lab.destinationFQDN)"
            let sourceLog = await CommitWindowKillTests.text(source.output, once: "uncertain move of '\(vm)' (migration ", seconds: 5)
            let resolved = await CommitWindowKillTests.text(source.output, once: outcome, seconds: 60)
            #expect(resolved.contains(outcome), "the source did not resolve the move: \(sourceLog.isEmpty ? resolved : sourceLog)")
            let answered = phase == .commitHeld ? "not committed here" : "committed here"
            let destinationLog = await CommitWindowKillTests.text(destination.output, once: "outcome query from host/\(lab.sourceFQDN)@", seconds: 5)
            #expect(destinationLog.contains("for '\(vm)' (migration ") && destinationLog.contains("): \(answered)"),
                    "the destination answered the source's outcome query: \(destinationLog)")

            // Both daemons go (kill -9: their QEMUs stay, so the test can ask each one itself).
            for d in [source.process, destination.process] where d.isRunning { d.send(SIGKILL) }
            for d in [source.process, destination.process] { _ = await d.wait() }

            // The invariant, from QEMU itself: the guest runs on exactly one host.
            let left = sourceQEMUs.map { ("source", $0) } + destinationQEMUs.map { ("destination", $0) }
            let context = "\(party) killed at \(phase); migrate: \(cliText)"
            #expect(left.count == 1, "QEMUs left: \(left) — \(context)")
            var statuses: [(String, String, String)] = []
            for side in ["s", "d"] {
                let directory = "\(lab.directory)/\(side)"
                for file in ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted() where file.hasSuffix(".qmp") {
                    guard let qmp = try? await QMPClient.connect(path: "\(directory)/\(file)") else { continue }
                    let status = (try? await qmp.execute("query-status"))?["status"]?.string ?? "unreachable"
                    if status == "running" {
                        // The guest is whole: its RAM holds the blob.
                        let dump = "\(lab.directory)/region-\(side).bin"
                        _ = try? await qmp.execute("pmemsave", ["val": .number(Double(CommitWindowKillTests.blobAddress)),
                                                                "size": .number(Double(CommitWindowKillTests.blobMiB << 20)),
                                                                "filename": .string(dump)])
                        #expect(FileManager.default.contents(atPath: dump) == FileManager.default.contents(atPath: blob),
                                "the running guest's memory holds the blob — \(context)")
                    }
                    statuses.append((side, file, status))
                    qmp.close()
                    await qmp.closed()
                }
            }
            let running = statuses.filter { $0.2 == "running" }
            #expect(running.count == 1, "exactly one QEMU runs the guest: \(statuses) — \(context)")
            if phase == .commitHeld {
                // Never resumed at the destination; resumed at the source (the same QEMU, adopted or kept).
                #expect(running.first?.0 == "s" && sourceQEMUs == [sourcePid], "\(statuses) — \(context)")
                #expect(destinationQEMUs.isEmpty, "no QEMU at the destination — \(context)")
            } else {
                // Runs at the destination; the paused source copy was quit, never resumed.
                #expect(running.first?.0 == "d" && destinationQEMUs == [incomingPid ?? -1], "\(statuses) — \(context)")
                #expect(sourceQEMUs.isEmpty, "the source's paused QEMU was quit — \(context)")
                #expect(!CommitWindowKillTests.text(source.output).contains("the guest was resumed here"), "resumed at the source — \(context)")
            }

            // Nothing half-registered.
            #expect(LiveMoveJournal(vmDirectory: lab.sourceVMs.directory).records().isEmpty, "the source's journal still has the move — \(context)")
            let commits = LiveCommitRecords(vmDirectory: lab.destinationVMs.directory)
            let recorded = commits.find(prefix: "")
            if phase == .commitHeld {
                #expect(recorded == nil, "a commit recorded for a move never committed — \(context)")
            } else {
                #expect(recorded?.1 == vm, "the committed move is recorded — \(context)")
            }
            let incomingFiles = ((try? FileManager.default.contentsOfDirectory(atPath: lab.directory + "/d")) ?? [])
                .filter { $0.hasSuffix(".sock") || ($0.hasSuffix(".qmp") && phase == .commitHeld) }
            #expect(incomingFiles.isEmpty, "destination sockets left: \(incomingFiles) — \(context)")
            #expect(lab.destinationVMs.stagingFiles().isEmpty, "\(context)")
        }
    }
}
