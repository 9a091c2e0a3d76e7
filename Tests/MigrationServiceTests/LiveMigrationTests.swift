import Foundation
import GSS
@testable import MigrationService
import QEMU
import Synchronization
import Testing

/// Real QEMU guests (TCG, no disk, a random blob in RAM) started by the tests.
enum QEMULab {
    static let binary = "qemu-system-x86_64"
    /// Guest RAM and where the blob sits in it (below SeaBIOS's high-memory tables at the top of RAM).
    static let memoryMiB = 320
    static let blobAddress: UInt64 = 0x200_0000
    static let blobMiB = 256

    /// Whether QEMU is installed (Debian `qemu-system-x86`; `.ci/install-deps --tests` installs it).
    static var available: Bool {
        (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":").contains {
            FileManager.default.isExecutableFile(atPath: "\($0)/\(binary)")
        }
    }

    /// `megabytes` MiB of random bytes in a file.
    static func blob(in directory: String, megabytes: Int = blobMiB) throws -> String {
        let path = directory + "/blob.bin"
        let head = Process()
        head.executableURL = URL(fileURLWithPath: "/usr/bin/head")
        head.arguments = ["-c", "\(megabytes)M", "/dev/urandom"]
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        head.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try head.run()
        head.waitUntilExit()
        return path
    }

    static func guests(_ lab: ServiceLab, _ side: String) -> QEMUGuests {
        // Short paths: unix socket names are limited to 108 bytes.
        QEMUGuests(settings: QEMUHostSettings(binary: binary, runDirectory: "\(lab.directory)/\(side)"))
    }

    static func declaration(_ name: String, blob: String) -> VirtualMachineDeclaration {
        VirtualMachineDeclaration(name: name, qemu: QEMUMachine(
            memoryMiB: memoryMiB, extraArguments: ["-device", "loader,file=\(blob),addr=0x\(String(blobAddress, radix: 16)),force-raw=on"]))
    }

    /// The blob's region of guest RAM, saved by QEMU (`pmemsave`).
    static func region(_ process: QEMUProcess, to path: String) async throws -> Data {
        try await process.qmp.execute("pmemsave", ["val": .number(Double(blobAddress)),
                                                   "size": .number(Double(blobMiB << 20)), "filename": .string(path)])
        let data = try #require(FileManager.default.contents(atPath: path))
        try? FileManager.default.removeItem(atPath: path)
        return data
    }

    /// Pids of live processes whose command line mentions `text` (the tests' own QEMUs, by their unique run directory).
    static func processes(mentioning text: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            guard let raw = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            let text_ = String(decoding: raw.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
            guard text_.contains(text) else { return false }
            // Not a zombie.
            let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            return !stat.contains(") Z ")
        }
    }
}

/// One source host with a running guest and one destination host that takes live migrations.
struct LiveLab {
    let lab: ServiceLab
    let sourceGuests: QEMUGuests
    let destinationGuests: QEMUGuests
    let destination: MigrationDestination
    let blob: String
    let vm: String

    static func start(vm: String = "live1", credSSP: Bool = false) async throws -> LiveLab {
        let lab = try await ServiceLab.make()
        let blob = try QEMULab.blob(in: lab.directory)
        let sourceGuests = QEMULab.guests(lab, "s")
        try await sourceGuests.start([QEMULab.declaration(vm, blob: blob)])
        let destinationGuests = QEMULab.guests(lab, "d")
        let destination = MigrationDestination(configuration: lab.destinationConfiguration(networks: ["127.0.0.12/32"]),
                                               guests: destinationGuests)
        try await destination.start(on: ServiceEndpoint(address: ServiceLab.destinationAddress, port: 0))
        if credSSP {
            destination.offerCredSSP(try ServiceTLSIdentity.generate(commonName: lab.destinationFQDN))
        }
        return LiveLab(lab: lab, sourceGuests: sourceGuests, destinationGuests: destinationGuests,
                       destination: destination, blob: blob, vm: vm)
    }

    var source: MigrationSource {
        get throws {
            try MigrationSource(localAddress: ServiceLab.sourceAddress, vmDirectory: lab.sourceVMs.directory,
                                hostName: "TestServer01", guests: sourceGuests)
        }
    }

    /// The target through `relay` (a damaged link), or directly.
    func target(via relay: LinkRelay? = nil) throws -> MigrationTarget {
        guard let relay else { return try lab.target(destination) }
        return MigrationTarget(fqdn: lab.destinationFQDN, endpoint: try ServiceEndpoint(address: "127.0.0.1", port: relay.port),
                               realm: lab.realmName)
    }

    func relay() async throws -> LinkRelay {
        try await LinkRelay.start(to: ServiceLab.destinationAddress, port: try requireEndpoint(destination).port)
    }

    /// Status of the source's guest.
    func sourceStatus() async -> String? {
        guard let p = sourceGuests.process(vm) else { return nil }
        return try? await p.status()
    }

    /// After a failed move: the guest runs at the source, the destination has no guest, no QEMU and no socket left.
    func expectRunningOnSourceOnly(_ comment: Comment? = nil) async {
        #expect(await sourceStatus() == "running", comment)
        #expect(await destinationGuests.list().isEmpty, comment)
        #expect(QEMULab.processes(mentioning: "\(lab.directory)/d/").isEmpty, "no QEMU left at the destination")
        let left = (try? FileManager.default.contentsOfDirectory(atPath: "\(lab.directory)/d")) ?? []
        #expect(!left.contains { $0.hasSuffix(".sock") || $0.hasSuffix(".qmp") }, "destination sockets left: \(left)")
    }

    func stop() async {
        await destination.stop()
        await sourceGuests.stopAll()
        await destinationGuests.stopAll()
        #expect(QEMULab.processes(mentioning: lab.directory).isEmpty, "every QEMU of the test is gone")
        lab.remove()
    }
}

@Suite("Live migration of a running QEMU guest", .serialized,
       .enabled(if: QEMULab.available, "qemu-system-x86_64 is not installed (Debian qemu-system-x86)"))
struct LiveMigrationTests {
    /// Moves the lab's guest, saving the source's region at switch-over (the source is paused in
    /// postmigrate then, the destination loaded and paused), and checks the destination's region equals it.
    static func moveAndCompare(_ live: LiveLab, authentication: MigrationAuthentication, smbChannels: Int? = nil) async throws {
        let sourceProcess = try #require(live.sourceGuests.process(live.vm))
        let atSwitchOver = Mutex<Data?>(nil)
        let statusAtSwitchOver = Mutex<String?>(nil)
        let path = live.lab.directory + "/source-region.bin"
        let options = MoveOptions(performance: smbChannels == nil ? .compression : .smb, channels: smbChannels ?? 4, progress: { p in
            if p.phase == .committing {
                statusAtSwitchOver.withLock { $0 = nil }
                let status = try? await sourceProcess.status()
                let region = try? await QEMULab.region(sourceProcess, to: path)
                statusAtSwitchOver.withLock { $0 = status }
                atSwitchOver.withLock { $0 = region }
            }
        })
        let report = try await live.source.move(vm: live.vm, to: try live.target(), authentication: authentication,
                                                options: options)
        #expect(report.destinationPrincipal == live.lab.userPrincipal)
        #expect(report.bytes > UInt64(QEMULab.blobMiB) << 20, "the stream carries at least the blob")
        #expect(statusAtSwitchOver.withLock { $0 } == "postmigrate", "the source is paused at switch-over")
        // The destination runs the guest; its memory is the source's at switch-over.
        let arrived = try #require(live.destinationGuests.process(live.vm))
        #expect(try await arrived.status() == "running")
        try await arrived.qmp.execute("stop")
        let region = try await QEMULab.region(arrived, to: live.lab.directory + "/destination-region.bin")
        let source = try #require(atSwitchOver.withLock { $0 })
        #expect(region.count == QEMULab.blobMiB << 20)
        #expect(region == source, "destination memory equals the source's at switch-over")
        #expect(region == FileManager.default.contents(atPath: live.blob), "and is the random blob")
        // The source's QEMU is gone, and the guest left the source's list.
        #expect(!sourceProcess.isAlive)
        #expect(QEMULab.processes(mentioning: "\(live.lab.directory)/s/").isEmpty)
        #expect(await live.sourceGuests.list().isEmpty)
        let events = await live.destination.events()
        // The destination counts the main stream's bytes (QEMU multifd: the pages go on the other channels).
        #expect(events.contains { if case .committed(vm: live.vm, _) = $0 { true } else { false } }, "\(events)")
        #expect(report.channels == (smbChannels ?? 1))
        let joined = Set(events.compactMap { if case .channelJoined(vm: live.vm, let channel) = $0 { channel } else { nil } })
        #expect(joined == Set(1..<(smbChannels ?? 1)), "each multifd channel joined on a connection of its own: \(events)")
    }

    @Test("a guest with 256 MiB of random RAM live-migrates with Kerberos: the destination runs with the source's memory, the source's QEMU is gone (1 connection; 2, 4: SMB as QEMU multifd, each multifd channel on a Kerberos-authenticated connection of its own)",
          arguments: [1, 2, 4])
    func kerberos(channels: Int) async throws {
        let live = try await LiveLab.start()
        let credential = try await live.lab.userCredential()
        try await Self.moveAndCompare(live, authentication: .kerberos(credential), smbChannels: channels > 1 ? channels : nil)
        await live.stop()
    }

    @Test("the same with CredSSP: the destination checks the delivered password (3: SMB, on every multifd channel's connection)",
          arguments: [1, 3])
    func credSSP(channels: Int) async throws {
        let live = try await LiveLab.start(credSSP: true)
        let user = try await SignOnCredentials.signOn(user: live.lab.user, realm: live.lab.realmName,
                                                      password: live.lab.userPassword, destination: live.lab.destinationFQDN)
        try await Self.moveAndCompare(live, authentication: .credSSP(user), smbChannels: channels > 1 ? channels : nil)
        await live.stop()
    }

    /// Runs a move that must fail, calling `during` once `after` bytes have been sent.
    static func failingMove(_ live: LiveLab, via relay: LinkRelay? = nil, after bytes: UInt64 = 48 << 20, channels: Int = 1,
                            during: @escaping @Sendable () async -> Void) async throws -> MigrationServiceError? {
        let credential = try await live.lab.userCredential()
        let fired = Mutex(false)
        let options = MoveOptions(performance: channels > 1 ? .smb : .compression, channels: channels,
                                  chunkSize: 1 << 20, progress: { p in
            guard p.bytesSent >= bytes, fired.withLock({ let was = $0; $0 = true; return !was }) else { return }
            await during()
        })
        let source = try live.source
        let target = try live.target(via: relay)
        do throws(MigrationServiceError) {
            _ = try await source.move(vm: live.vm, to: target, credential: credential, options: options)
            return nil
        } catch {
            return error
        }
    }

    @Test("the destination's QEMU killed mid-stream: the guest keeps running on the source only (1 connection; 3: multifd)",
          arguments: [1, 3])
    func destinationQEMUKilled(channels: Int) async throws {
        let live = try await LiveLab.start()
        let directory = live.lab.directory
        let error = try await Self.failingMove(live, channels: channels) {
            for pid in QEMULab.processes(mentioning: "\(directory)/d/") { kill(pid, SIGKILL) }
        }
        #expect(error != nil)
        #expect(error?.kind != .uncertain)
        await live.expectRunningOnSourceOnly("\(String(describing: error))")
        let events = await live.destination.events()
        #expect(events.contains { if case .failed(vm: live.vm, _, _) = $0 { true } else { false } })
        await live.stop()
    }

    @Test("the destination daemon stopping mid-stream: the guest keeps running on the source only")
    func destinationStopped() async throws {
        let live = try await LiveLab.start()
        let destination = live.destination
        let error = try await Self.failingMove(live) { await destination.stop() }
        #expect(error?.kind == .connectionLost || error?.kind == .storage, "\(String(describing: error))")
        await live.expectRunningOnSourceOnly()
        await live.stop()
    }

    @Test("the link dying mid-stream: the guest keeps running on the source only")
    func linkCut() async throws {
        let live = try await LiveLab.start()
        let relay = try await live.relay()
        let error = try await Self.failingMove(live, via: relay) { await relay.cut() }
        #expect(error?.kind == .connectionLost, "\(String(describing: error))")
        try await Task.sleep(for: .milliseconds(300))  // the destination notices the closed link
        let failed = await live.destination.waitForEvents { $0.contains { if case .failed = $0 { true } else { false } } }
        #expect(failed, "the destination never recorded the failure")
        await live.expectRunningOnSourceOnly()
        await live.stop()
    }

    @Test("a tampered chunk: the destination refuses it (SEC_E_MESSAGE_ALTERED) and the guest keeps running on the source only (1 connection; 3: multifd, the chunk on a multifd channel, whose end leaves the incoming QEMU's monitor blocked)",
          .timeLimit(.minutes(2)), arguments: [1, 3])
    func tamperedChunk(channels: Int) async throws {
        let live = try await LiveLab.start()
        let relay = try await live.relay()
        // With multifd, the second connection is always a multifd channel (the main one connects first).
        relay.tamper(afterBytes: 20 << 20, connection: channels > 1 ? 1 : nil)
        let error = try await Self.failingMove(live, via: relay, after: .max, channels: channels) {}
        #expect(error != nil)
        let failed = await live.destination.waitForEvents { $0.contains { if case .failed = $0 { true } else { false } } }
        #expect(failed, "the destination never recorded the failure")
        let events = await live.destination.events()
        #expect(events.contains { if case .failed(vm: live.vm, status: .messageAltered, _) = $0 { true } else { false } },
                "\(events)")
        await live.expectRunningOnSourceOnly()
        await relay.cut()
        await live.stop()
    }

    @Test("the link dying in the commit window: the source stays paused and reports the outcome as uncertain; the guest runs on one host only")
    func commitWindowLoss() async throws {
        let live = try await LiveLab.start()
        let relay = try await live.relay()
        let credential = try await live.lab.userCredential()
        let options = MoveOptions(progress: { p in
            guard p.phase == .committing else { return }
            // The destination still gets `commit` (and resumes the guest); its `committed` never arrives.
            relay.swallowReplies()
            Task {
                try? await Task.sleep(for: .seconds(2))
                await relay.cut()
            }
        })
        var failure: MigrationServiceError? = nil
        let source = try live.source
        let target = try live.target(via: relay)
        do throws(MigrationServiceError) {
            _ = try await source.move(vm: live.vm, to: target, credential: credential, options: options)
        } catch {
            failure = error
        }
        let error = try #require(failure)
        #expect(error.kind == .uncertain, "\(error)")
        #expect(error.message.contains("uncertain"))
        #expect(error.detail.contains("resume it here (QMP cont)"))
        #expect(await live.sourceStatus() == "postmigrate", "paused at the source, never resumed there")
        #expect(live.sourceGuests.uncertain == [live.vm])
        let arrived = try #require(live.destinationGuests.process(live.vm))
        #expect(try await arrived.status() == "running")
        await live.stop()
    }

    @Test("a host daemon starts its declared QEMU guests, lists them with their QMP status, and stops them (its own pids)")
    func daemonOwnsItsGuests() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let blob = try QEMULab.blob(in: lab.directory, megabytes: 1)
        let configuration = HostConfiguration(
            name: "TestServer01", fqdn: lab.sourceFQDN, address: ServiceLab.sourceAddress, realm: lab.realmName,
            keytab: lab.sourceKeytab, ccacheDirectory: lab.directory, migrationPort: 0, vmDirectory: lab.sourceVMs.directory, authenticationType: .kerberos,
            qemu: QEMUHostSettings(binary: QEMULab.binary, runDirectory: lab.directory + "/r"),
            virtualMachines: [QEMULab.declaration("g1", blob: blob), VirtualMachineDeclaration(name: "file1")])
        try lab.createVM("file1", size: 4096)
        let daemon = HostDaemon(configuration: configuration)
        try await daemon.start()
        let listed = await daemon.virtualMachines()
        let pid = try #require(listed.first { $0.name == "g1" }?.pid)
        #expect(listed.map(\.name) == ["g1", "file1"])
        #expect(listed.first?.status == "running")
        #expect(listed.last?.kind == .stateFile && listed.last?.status == "registered")
        #expect(kill(pid, 0) == 0)
        await daemon.stop()
        #expect(QEMULab.processes(mentioning: lab.directory + "/r/").isEmpty, "stop quits the daemon's QEMU")
        #expect(!FileManager.default.fileExists(atPath: lab.directory + "/r/g1.qmp"))
    }

    @Test("a guest that is not running is refused with P3's error (ERROR_INVALID_STATE) before connecting")
    func notRunning() async throws {
        let live = try await LiveLab.start()
        let process = try #require(live.sourceGuests.process(live.vm))
        try await process.qmp.execute("stop")
        let credential = try await live.lab.userCredential()
        var failure: MigrationServiceError? = nil
        let source = try live.source
        let target = try live.target()
        do throws(MigrationServiceError) {
            _ = try await source.move(vm: live.vm, to: target, credential: credential)
        } catch {
            failure = error
        }
        #expect(failure?.status == .invalidState)
        #expect(failure?.message.contains("The virtual machine '\(live.vm)' is not running on host TestServer01") == true)
        #expect(await live.destination.events().isEmpty, "nothing reached the destination")
        await live.stop()
    }
}
