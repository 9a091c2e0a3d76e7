import Foundation
import GSS
import Hosts
@testable import MigrationService
import QEMU
import Testing
import TestRealm

/// A source host run as its own `migauth serve` process (it owns one QEMU guest), an in-process destination
/// with QEMU, and a workstation's `migauth migrate --via` that asks the source daemon for a live move.
struct ServedSourceLab {
    let lab: ServiceLab
    let destination: MigrationDestination
    let destinationGuests: QEMUGuests
    let daemon: ChildProcess
    let management: String
    let out: String
    let err: String
    let vm: String
    let environment: [String: String]
    /// `migauth serve` arguments (to start the daemon again after it was killed).
    let serveArguments: [String]

    /// `grace`: the daemon's --shutdown-grace; `limits`: the destination's.
    static func start(vm: String = "served1", grace: Double = 60, limits: ServiceLimits = .default,
                      maximumMigrations: Int = 2) async throws -> ServedSourceLab {
        let lab = try await ServiceLab.make()
        try await lab.realm.setAllowedToDelegate(
            "host/\(lab.sourceFQDN)",
            targets: [MigrationServiceNames.migrationPrincipal(fqdn: lab.destinationFQDN, realm: lab.realmName)])
        let blob = try QEMULab.blob(in: lab.directory, megabytes: 64)
        let destinationGuests = QEMULab.guests(lab, "d")
        var configuration = lab.destinationConfiguration(networks: ["127.0.0.12/32"], maximumMigrations: maximumMigrations)
        configuration.limits = limits
        let destination = MigrationDestination(configuration: configuration, guests: destinationGuests)
        try await destination.start(on: ServiceEndpoint(address: ServiceLab.destinationAddress, port: 0))
        let source = HostConfiguration(
            name: "TestServer01", fqdn: lab.sourceFQDN, address: ServiceLab.sourceAddress, realm: lab.realmName,
            keytab: lab.sourceKeytab, ccacheDirectory: lab.directory, migrationPort: 0,
            allowedUsers: [lab.user], incomingNetworks: [IPv4Subnet("127.0.0.11/32")!],
            vmDirectory: lab.sourceVMs.directory, hosts: [lab.destinationFQDN: ServiceLab.destinationAddress],
            authenticationType: .kerberos,  // Kerberos sign-ons and moves (the default is CredSSP, as in Hyper-V)
            qemu: QEMUHostSettings(binary: QEMULab.binary, runDirectory: lab.directory + "/s"),
            virtualMachines: [QEMULab.declaration(vm, blob: blob)])
        let file = lab.directory + "/source.json"
        try source.save(file)
        let out = lab.directory + "/source-serve.out", err = lab.directory + "/source-serve.err"
        let environment = CLITests.environment(lab.realm)
        let serveArguments = ["serve", "--config", file, "--shutdown-grace", String(grace)]
        let daemon = try await ChildProcess(executable: CLITests.migauth, arguments: serveArguments,
                                      environment: environment, standardOutputPath: out, standardErrorPath: err)
        let ready = try await CLITests.line(in: out, startingWith: "READY ")
        let management = try #require(ready.split(separator: " ").first { $0.hasPrefix("management=") }?.dropFirst(11))
        return ServedSourceLab(lab: lab, destination: destination, destinationGuests: destinationGuests, daemon: daemon,
                               management: String(management), out: out, err: err, vm: vm, environment: environment,
                               serveArguments: serveArguments)
    }

    /// The source daemon started again (same configuration): the process, its stdout and stderr paths, and its
    /// management endpoint.
    func serveAgain(_ tag: String) async throws -> (ChildProcess, String, String, String) {
        let out = "\(lab.directory)/\(tag).out", err = "\(lab.directory)/\(tag).err"
        let daemon = try await ChildProcess(executable: CLITests.migauth, arguments: serveArguments, environment: environment,
                                      standardOutputPath: out, standardErrorPath: err)
        let ready: String
        do {
            ready = try await CLITests.line(in: out, startingWith: "READY ")
        } catch {
            await daemon.stop()
            throw error
        }
        let management = ready.split(separator: " ").first { $0.hasPrefix("management=") }?.dropFirst(11) ?? ""
        return (daemon, out, err, String(management))
    }

    /// Starts `migauth migrate --via` for the guest (it runs in the background).
    func migrate(via: String? = nil) async throws -> (ChildProcess, String, String) {
        let ccache = try await lab.realm.kinit(lab.user, password: lab.userPassword)
        let id = UUID().uuidString
        let out = "\(lab.directory)/\(id).out", err = "\(lab.directory)/\(id).err"
        let child = try await ChildProcess(
            executable: CLITests.migauth,
            arguments: ["migrate", "--vm", vm, "--to", lab.destinationFQDN,
                        "--endpoint", try requireEndpoint(destination).description, "--via", via ?? management,
                        "--source-fqdn", lab.sourceFQDN, "--realm", lab.realmName, "--ccache", ccache],
            environment: environment, standardOutputPath: out, standardErrorPath: err)
        return (child, out, err)
    }

    /// Waits (at most `seconds`) until the destination's events satisfy `predicate`; returns whether they did.
    func waitForEvents(seconds: Double = 60, _ predicate: ([MigrationEvent]) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while ContinuousClock.now < deadline {
            if predicate(await destination.events()) { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    var moveStarted: ([MigrationEvent]) -> Bool {
        { [vm] events in events.contains { if case .started(vm: vm, _) = $0 { true } else { false } } }
    }

    var moveFailed: ([MigrationEvent]) -> Bool {
        { [vm] events in events.contains { if case .failed(vm: vm, _, _) = $0 { true } else { false } } }
    }

    /// Waits at most `seconds` for `process` to exit; nil if it is still running.
    static func exit(of process: ChildProcess, within seconds: Double) async -> (status: Int32, signaled: Bool)? {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        return process.exitState
    }

    func text(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    /// The file's text once it contains `needle` (at most `seconds`; the daemon logs its VMs just after READY).
    func text(_ path: String, once needle: String, seconds: Double = 10) async -> String {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while !text(path).contains(needle), ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        return text(path)
    }

    /// The test's QEMUs on the source (started by its daemon) and at the destination.
    var sourceQEMUs: [Int32] { QEMULab.processes(mentioning: "\(lab.directory)/s/") }
    var destinationQEMUs: [Int32] { QEMULab.processes(mentioning: "\(lab.directory)/d/") }

    /// The destination has no guest, no QEMU and no socket of the move.
    func expectNothingAtDestination(_ comment: Comment? = nil) async {
        #expect(await destinationGuests.list().isEmpty, comment)
        #expect(destinationQEMUs.isEmpty, "no QEMU left at the destination")
        let left = (try? FileManager.default.contentsOfDirectory(atPath: "\(lab.directory)/d")) ?? []
        #expect(!left.contains { $0.hasSuffix(".sock") || $0.hasSuffix(".qmp") }, "destination sockets left: \(left)")
    }

    /// Runs `body` with a started lab and always ends it, also when `body` throws.
    static func with(grace: Double = 60, limits: ServiceLimits = .default, maximumMigrations: Int = 2,
                     _ body: (ServedSourceLab) async throws -> Void) async throws {
        let s = try await start(grace: grace, limits: limits, maximumMigrations: maximumMigrations)
        do {
            try await body(s)
        } catch {
            await s.stop()
            throw error
        }
        await s.stop()
    }

    /// Ends everything the test started (its daemon by pid, then QEMUs in its own run directories).
    func stop() async {
        daemon.send(SIGCONT)
        await daemon.stop(grace: .seconds(10))
        await destination.stop()
        await destinationGuests.stopAll()
        for pid in QEMULab.processes(mentioning: lab.directory) { kill(pid, SIGKILL) }
        lab.remove()
    }
}

/// Test-side TCP connect: whether something accepts on `endpoint` now.
func accepts(_ endpoint: String) -> Bool {
    guard let colon = endpoint.lastIndex(of: ":"), let port = UInt16(endpoint[endpoint.index(after: colon)...]) else { return false }
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    inet_pton(AF_INET, String(endpoint[..<colon]), &address.sin_addr)
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
}

@Suite("migauth serve: graceful shutdown mid-move and the live progress timeout", .serialized, .timeLimit(.minutes(5)),
       .enabled(if: QEMULab.available, "qemu-system-x86_64 is not installed (Debian qemu-system-x86)"))
struct DaemonLifecycleTests {
    @Test("SIGTERM of the source daemon mid-move: it stops accepting, lets the live move finish, exits 0; the guest runs at the destination only")
    func sigtermFinishesTheMove() async throws {
        try await ServedSourceLab.with(grace: 120) { s in
            let (migrate, migrateOut, migrateErr) = try await s.migrate()
            #expect(await s.waitForEvents(s.moveStarted), "the move reached the destination")
            s.daemon.send(SIGTERM)
            _ = try await CLITests.line(in: s.out, startingWith: "STOPPING")
            try await Task.sleep(for: .milliseconds(200))
            #expect(!accepts(s.management), "a stopping daemon accepts no new management connection")
            let exited = await ServedSourceLab.exit(of: s.daemon, within: 150)
            #expect(exited?.status == 0 && exited?.signaled == false, "the daemon exits 0 within its grace: \(String(describing: exited))")
            #expect(s.text(s.out).contains("STOPPED"))
            let moved = await ServedSourceLab.exit(of: migrate, within: 120)
            await migrate.stop()
            #expect(moved?.status == 0, "\(s.text(migrateOut)) \(s.text(migrateErr))")
            // Whole, on one host: running at the destination, no QEMU left at the source.
            let arrived = try #require(s.destinationGuests.process(s.vm))
            #expect(try await arrived.status() == "running")
            #expect(s.sourceQEMUs.isEmpty, "the source's QEMU is gone")
            #expect(!s.text(s.err).contains("stopping VM \(s.vm)"), "the guest had left the source before it stopped: \(s.text(s.err))")
        }
    }

    @Test("SIGTERM with --shutdown-grace 0 mid-move: the move is aborted, the guest runs again at the source until the daemon stops it; nothing at the destination")
    func sigtermAbortsAfterTheGrace() async throws {
        try await ServedSourceLab.with(grace: 0) { s in
            let (migrate, migrateOut, migrateErr) = try await s.migrate()
            #expect(await s.waitForEvents(s.moveStarted), "the move reached the destination")
            s.daemon.send(SIGTERM)
            let exited = await ServedSourceLab.exit(of: s.daemon, within: 60)
            #expect(exited?.status == 0 && exited?.signaled == false, "\(String(describing: exited)) \(s.text(s.err))")
            #expect(s.text(s.out).contains("STOPPED"))
            let moved = await ServedSourceLab.exit(of: migrate, within: 120)
            await migrate.stop()
            #expect(moved?.status == 1, "the move failed: \(s.text(migrateOut)) \(s.text(migrateErr))")
            #expect(await s.waitForEvents(s.moveFailed), "the destination discarded the move")
            await s.expectNothingAtDestination()
            // The source resumed its guest before stopping it (QMP status at the stop), and its QEMU is gone.
            #expect(s.text(s.err).contains("stopping VM \(s.vm): QEMU guest, running"), "\(s.text(s.err))")
            #expect(s.sourceQEMUs.isEmpty)
        }
    }

    @Test("a stalled source (SIGSTOP of its daemon) mid-move: the destination's progress timeout fails the live move and frees its N2 slot and QEMU; after SIGCONT the source runs its guest again")
    func progressTimeoutOnTheLivePath() async throws {
        var limits = ServiceLimits.default
        limits.progressTimeout = 2
        try await ServedSourceLab.with(limits: limits, maximumMigrations: 1) { s in
            let (migrate, migrateOut, migrateErr) = try await s.migrate()
            #expect(await s.waitForEvents(s.moveStarted), "the move reached the destination")
            s.daemon.send(SIGSTOP)
            // Only the destination's own timer can end the move while the source is stopped.
            try #require(await s.waitForEvents(seconds: 30, s.moveFailed), "the progress timeout failed the move")
            #expect(s.daemon.isRunning, "the source is still stopped, not gone")
            await s.expectNothingAtDestination()
            // The N2 slot (limit 1) is free: a state-file move is not queued.
            let bytes = try s.lab.createVM("after-stall", size: 100_000)
            let report = try await s.lab.source.move(vm: "after-stall", to: try s.lab.target(s.destination),
                                                     credential: try await s.lab.userCredential())
            #expect(report.queuedAt == nil, "not queued behind the stalled move")
            #expect(s.lab.contents(s.lab.destinationVMs, "after-stall") == bytes)
            // The source wakes up: its move fails and the guest runs there again.
            s.daemon.send(SIGCONT)
            let moved = await ServedSourceLab.exit(of: migrate, within: 120)
            await migrate.stop()
            #expect(moved?.status == 1, "\(s.text(migrateOut)) \(s.text(migrateErr))")
            s.daemon.send(SIGTERM)
            let exited = await ServedSourceLab.exit(of: s.daemon, within: 60)
            #expect(exited?.status == 0)
            #expect(s.text(s.err).contains("stopping VM \(s.vm): QEMU guest, running"), "\(s.text(s.err))")
            #expect(s.sourceQEMUs.isEmpty)
        }
    }
}
