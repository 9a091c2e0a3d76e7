import Foundation
import GSS
import MigrationService
import NIOCore
import NIOPosix
import QEMU
import Synchronization
import TestRealm

/// `migauth-bench qemu [--megabytes 512] [--no-daemons]`: one guest (a random blob of that size in RAM, TCG),
/// migrated live on loopback four ways in one run: QEMU's own plain TCP migration, QEMU's TLS migration
/// (`tls-creds-x509`, GnuTLS), through a migauth source and destination in this process with Kerberos
/// (sealed chunks), and between two `migauth serve` processes (``QEMUDaemonsBench``).
/// Figures: RAM transferred / total time, total time, downtime (QEMU's; for migauth plus the commit handshake),
/// and end to end: from the request (QMP `migrate`; `MigrationSource.move`) until the guest runs at the
/// destination (QEMU's own: the source reports `completed` and the destination answers `running` after `cont`;
/// migauth: `committed`, which includes the Kerberos handshake and starting the destination's QEMU).
enum QEMUBench {
    struct Figures {
        var name: String
        var transferred: UInt64
        var totalMilliseconds: Double
        var downtimeMilliseconds: Double
        var endToEndMilliseconds: Double = .nan
        var note: String = ""
        var megabytesPerSecond: Double { Double(transferred) / (totalMilliseconds / 1000) / 1e6 }
    }

    static let blobAddress = 0x200_0000

    static func run(_ arguments: [String]) async throws {
        var megabytes = 512
        var daemons = true
        var smbConnections = [2, 4]
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "--megabytes": megabytes = Int(iterator.next() ?? "") ?? megabytes
            case "--no-daemons": daemons = false
            case "--smb":
                // Connections of the SMB paths, comma-separated (default 2,4; "none" skips them).
                let value = iterator.next() ?? ""
                smbConnections = value == "none" ? [] : value.split(separator: ",").compactMap { Int($0) }.filter { (2...16).contains($0) }
            default: throw BenchError("unknown option \(argument)")
            }
        }
        let loadBefore = ServiceBench.loadAverage()
        let work = NSTemporaryDirectory() + "qemu-bench-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let blob = work + "/blob.bin"
        try shell("head -c \(megabytes)M /dev/urandom > \(blob)")
        let machine = QEMUMachine(memoryMiB: megabytes + 128,
                                  extraArguments: ["-device", "loader,file=\(blob),addr=0x\(String(blobAddress, radix: 16)),force-raw=on"])
        var results: [Figures] = []
        results.append(try await qemuOwn(machine: machine, work: work + "/tcp", tls: false))
        do {
            results.append(try await qemuOwn(machine: machine, work: work + "/tls", tls: true))
        } catch {
            results.append(Figures(name: "QEMU TLS (tls-creds-x509)", transferred: 0, totalMilliseconds: .nan,
                                   downtimeMilliseconds: .nan, note: "failed: \(error)"))
        }
        let inProcess = try await throughMigAuth(machine: machine, work: work + "/migauth")
        results.append(inProcess)
        // The SMB option: QEMU multifd, one authenticated connection per channel; QEMU's own multifd as its anchor.
        var multifd: [(anchor: Figures, ours: Figures)] = []
        for connections in smbConnections {
            let anchor = try await qemuOwn(machine: machine, work: work + "/tcp-multifd-\(connections)", tls: false,
                                           multifd: connections - 1)
            let ours = try await throughMigAuth(machine: machine, work: work + "/migauth-smb-\(connections)", smbChannels: connections)
            results += [anchor, ours]
            multifd.append((anchor, ours))
        }
        if daemons {
            do {
                results.append(try await QEMUDaemonsBench.run(machine: machine, work: work + "/daemons"))
            } catch {
                results.append(Figures(name: "two migauth daemons", transferred: 0, totalMilliseconds: .nan,
                                       downtimeMilliseconds: .nan, note: "failed: \(error)"))
            }
        }
        print("| path (\(megabytes) MiB random RAM, TCG, loopback) | RAM transferred | total time | MB/s | downtime | end to end | note |")
        print("|---|---|---|---|---|---|---|")
        for r in results {
            print("| \(r.name) | \(r.transferred > 0 ? "\(r.transferred >> 20) MiB" : "–") | \(cell(r.totalMilliseconds, " ms")) | "
                  + "\(cell(r.megabytesPerSecond)) | \(cell(r.downtimeMilliseconds, " ms")) | \(cell(r.endToEndMilliseconds, " ms")) | \(r.note) |")
        }
        if let plain = results.first {
            let ours = inProcess
            print("migauth / plain TCP: \(String(format: "%.0f", 100 * ours.megabytesPerSecond / plain.megabytesPerSecond)) % of the rate; "
                  + "end to end \(String(format: "%.2f", ours.endToEndMilliseconds / plain.endToEndMilliseconds))× QEMU's time")
            for (anchor, ours) in multifd {
                print("\(ours.name) / \(anchor.name): \(String(format: "%.0f", 100 * ours.megabytesPerSecond / anchor.megabytesPerSecond)) % of the rate; "
                      + "end to end \(String(format: "%.2f", ours.endToEndMilliseconds / anchor.endToEndMilliseconds))× its time, "
                      + "\(String(format: "%.2f", ours.endToEndMilliseconds / plain.endToEndMilliseconds))× plain TCP's")
            }
            if let served = results.last, daemons, served.endToEndMilliseconds.isFinite {
                print("two daemons: end to end \(String(format: "%.2f", served.endToEndMilliseconds / plain.endToEndMilliseconds))× QEMU's time")
            }
        }
        print("load average before: \(loadBefore), after: \(ServiceBench.loadAverage())")
    }

    static func shell(_ command: String) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", command]
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw BenchError("failed: \(command)") }
    }

    static func freePort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port ?? 0
        try await channel.close()
        return port
    }

    /// Polls query-migrate until the migration is over; returns its last answer.
    static func waitDone(_ p: QEMUProcess) async throws -> JSONValue {
        while true {
            let r = try await p.qmp.execute("query-migrate")
            switch r["status"]?.string ?? "" {
            case "completed": return r
            case "failed", "cancelled": throw BenchError("migration \(r)")
            default: try await Task.sleep(for: .milliseconds(5))
            }
        }
    }

    /// Resumes a destination that finished its incoming migration (`-S`: it waits for `cont`) and waits until it runs.
    static func waitRunning(_ p: QEMUProcess) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            switch try await p.status() {
            case "running": return
            case "paused": try await p.qmp.execute("cont")
            default: try await Task.sleep(for: .milliseconds(1))   // inmigrate: still loading the last pages
            }
        }
        throw BenchError("the destination did not run within 30 s of the migration")
    }

    static func milliseconds(_ d: Duration) -> Double { ServiceBench.seconds(d) * 1000 }

    /// A figure for the table, "–" where the path has none (the two daemons have no QEMU rate or downtime).
    static func cell(_ value: Double, _ unit: String = "") -> String {
        value.isFinite ? String(format: "%.0f", value) + unit : "–"
    }

    static func figures(_ name: String, _ r: JSONValue) -> Figures {
        Figures(name: name, transferred: r["ram"]?["transferred"]?.uint64 ?? 0,
                totalMilliseconds: Double(r["total-time"]?.uint64 ?? 0), downtimeMilliseconds: Double(r["downtime"]?.uint64 ?? 0))
    }

    /// QEMU's own migration, source → destination over loopback TCP, plain or with TLS.
    static func qemuOwn(machine: QEMUMachine, work: String, tls: Bool, multifd: Int = 0) async throws -> Figures {
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        var source = machine
        var destination = QEMUMachine(memoryMiB: machine.memoryMiB)
        if tls {
            let d = work + "/pki"
            try shell("""
                set -e; mkdir -p \(d); cd \(d)
                openssl req -x509 -newkey rsa:2048 -nodes -keyout ca-key.pem -out ca-cert.pem -days 2 -subj /CN=bench-ca 2>/dev/null
                printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext
                for who in server client; do
                  openssl req -newkey rsa:2048 -nodes -keyout $who-key.pem -out $who.csr -subj /CN=localhost 2>/dev/null
                  openssl x509 -req -in $who.csr -CA ca-cert.pem -CAkey ca-key.pem -CAcreateserial -out $who-cert.pem -days 2 -extfile san.ext 2>/dev/null
                done
                """)
            source.extraArguments += ["-object", "tls-creds-x509,id=tls0,dir=\(d),endpoint=client"]
            destination.extraArguments += ["-object", "tls-creds-x509,id=tls0,dir=\(d),endpoint=server,verify-peer=on"]
        }
        let src = try await QEMUProcess.launch(binary: "qemu-system-x86_64", name: "bench", machine: source, runDirectory: work,
                                               socketName: "src", incoming: false)
        let dst = try await QEMUProcess.launch(binary: "qemu-system-x86_64", name: "bench", machine: destination, runDirectory: work,
                                               socketName: "dst", incoming: true)
        defer { Task { await src.stop(); await dst.stop() } }
        let port = try await freePort()
        var parameters: [String: JSONValue] = ["max-bandwidth": .number(Double(64 << 30))]
        if tls {
            try await dst.qmp.execute("migrate-set-parameters", ["tls-creds": "tls0"])
            parameters["tls-creds"] = "tls0"
            parameters["tls-hostname"] = "localhost"
        }
        if multifd > 0 {
            for p in [src, dst] {
                try await p.qmp.execute("migrate-set-capabilities",
                                        ["capabilities": .array([.object(["capability": "multifd", "state": .bool(true)])])])
                try await p.qmp.execute("migrate-set-parameters", ["multifd-channels": .number(Double(multifd))])
            }
        }
        try await dst.qmp.execute("migrate-incoming", ["uri": .string("tcp:127.0.0.1:\(port)")])
        try await src.qmp.execute("migrate-set-parameters", parameters)
        let clock = ContinuousClock()
        let start = clock.now
        try await src.qmp.execute("migrate", ["uri": .string("tcp:127.0.0.1:\(port)")])
        let name = tls ? "QEMU TLS (tls-creds-x509)" : multifd > 0 ? "QEMU plain TCP, multifd \(multifd)" : "QEMU plain TCP"
        var result = figures(name, try await waitDone(src))
        try await waitRunning(dst)
        result.endToEndMilliseconds = milliseconds(clock.now - start)
        await src.stop()
        await dst.stop()
        return result
    }

    /// The same guest through a migauth source and destination (Kerberos, sealed 1 MiB chunks).
    static func throughMigAuth(machine: QEMUMachine, work: String, smbChannels: Int? = nil) async throws -> Figures {
        try await TestRealm.withRealm { realm in
            let lab = try await BenchRealm.prepare(realm)
            let fqdn = BenchRealm.fqdn, keytab = lab.keytab, ccache = lab.ccache
            let credential = try GSSCredential.acquire(store: GSSCredentialStore(ccache: ccache))
            let sourceGuests = QEMUGuests(settings: QEMUHostSettings(runDirectory: work + "/s"))
            try await sourceGuests.start([VirtualMachineDeclaration(name: "bench", qemu: machine)])
            let destinationGuests = QEMUGuests(settings: QEMUHostSettings(runDirectory: work + "/d"))
            let destination = MigrationDestination(configuration: DestinationConfiguration(
                hostName: "TestServer02", fqdn: fqdn, realm: realm.name, keytab: keytab, vmDirectory: work + "/dst",
                allowedUsers: ["bench"], useAnyNetwork: true), guests: destinationGuests)
            let endpoint = try await destination.start(on: ServiceEndpoint(address: "127.0.0.12", port: 0))
            let source = try MigrationSource(localAddress: "127.0.0.11", vmDirectory: work + "/src", guests: sourceGuests)
            let process = try requireProcess(sourceGuests.process("bench"))
            let atCommit = Mutex<(JSONValue, ContinuousClock.Instant)?>(nil)
            let committed = Mutex<ContinuousClock.Instant?>(nil)
            let clock = ContinuousClock()
            let start = clock.now
            let report = try await source.move(vm: "bench", to: MigrationTarget(fqdn: fqdn, endpoint: endpoint, realm: realm.name),
                                               credential: credential,
                                               options: MoveOptions(performance: smbChannels == nil ? .tcpIP : .smb,
                                                                    channels: smbChannels ?? 1, progress: { p in
                if p.phase == .committed { committed.withLock { $0 = clock.now } }
                guard p.phase == .committing, let r = try? await process.qmp.execute("query-migrate") else { return }
                atCommit.withLock { $0 = (r, clock.now) }
            }))
            // Until `committed`: the destination runs the guest from then on (the source's QEMU quits afterwards).
            let done = committed.withLock { $0 } ?? clock.now
            guard let (r, committing) = atCommit.withLock({ $0 }) else { throw BenchError("no figures at switch-over") }
            var f = figures(smbChannels.map { "migauth, Kerberos, SMB \($0) connections (multifd \($0 - 1))" } ?? "migauth, Kerberos (sealed chunks)", r)
            let handshake = milliseconds(done - committing)
            f.endToEndMilliseconds = milliseconds(done - start)
            f.note = "downtime = QEMU's + the commit handshake (\(String(format: "%.0f", handshake)) ms); \(report.bytes >> 20) MiB of stream"
            f.downtimeMilliseconds += handshake
            await destination.stop()
            await destinationGuests.stopAll()
            await sourceGuests.stopAll()
            return f
        }
    }

    static func requireProcess(_ p: QEMUProcess?) throws -> QEMUProcess {
        guard let p else { throw BenchError("the guest did not start") }
        return p
    }
}
