import Foundation
import MigrationService
import MigrationVocabulary
import QEMU
import TestRealm

/// The qemu bench's fourth path: the same guest moved between two `migauth serve` processes (each owns its
/// QEMU), requested by a workstation's `migauth migrate --via … --sign-on credssp` (the seed's remote shell
/// with CredSSP: the user's password reaches the source daemon, which moves with the user's Kerberos TGT).
/// Timed end to end: from starting `migauth migrate` until it exits 0 (the guest runs at the destination).
enum QEMUDaemonsBench {
    static let sourceFQDN = "hosta.test", destinationFQDN = "hostb.test"
    static let sourceAddress = "127.0.0.11", destinationAddress = "127.0.0.12", workstationAddress = "127.0.0.13"

    static func run(machine: QEMUMachine, work: String) async throws -> QEMUBench.Figures {
        let migauth = try executable("migauth")
        return try await TestRealm.withRealm { realm in
            _ = try await BenchRealm.prepare(realm)   // this process's Kerberos environment, the user, hostb's migration key
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
            // Each host: its host/ key (CredSSP's inner Kerberos and the source's TLS sign-on) and its migration key.
            var keytabs: [String: String] = [:]
            for fqdn in [sourceFQDN, destinationFQDN] {
                let host = MigrationServiceNames.hostPrincipal(fqdn: fqdn, realm: nil)
                let migration = MigrationServiceNames.migrationPrincipal(fqdn: fqdn, realm: nil)
                if fqdn != BenchRealm.fqdn { try await realm.addPrincipal(migration) }
                try await realm.addPrincipal(host)
                keytabs[fqdn] = try await realm.exportKeytab([host, migration], to: "\(work)/\(fqdn).keytab")
            }
            func configuration(_ name: String, _ fqdn: String, _ address: String, peer: String, peerAddress: String,
                               vms: [VirtualMachineDeclaration]) throws -> String {
                let directory = "\(work)/\(name)"
                try FileManager.default.createDirectory(atPath: directory + "/vms", withIntermediateDirectories: true)
                let file = directory + "/host.json"
                try HostConfiguration(
                    name: name, fqdn: fqdn, address: address, realm: realm.name, keytab: keytabs[fqdn] ?? "",
                    ccacheDirectory: directory, migrationPort: 0, managementPort: 0, allowedUsers: [BenchRealm.user],
                    incomingNetworks: [IPv4Subnet("127.0.0.0/8")!], performanceOption: .tcpIP,
                    vmDirectory: directory + "/vms", hosts: [peer: peerAddress], authenticationType: .credSSP,
                    qemu: QEMUHostSettings(runDirectory: directory + "/qemu"), virtualMachines: vms).save(file)
                return file
            }
            let sourceFile = try configuration("TestServer01", sourceFQDN, sourceAddress, peer: destinationFQDN,
                                               peerAddress: destinationAddress,
                                               vms: [VirtualMachineDeclaration(name: "bench", qemu: machine)])
            let destinationFile = try configuration("TestServer02", destinationFQDN, destinationAddress, peer: sourceFQDN,
                                                    peerAddress: sourceAddress, vms: [])
            var daemons: [ChildProcess] = []
            do {
                let (source, sourceReady) = try await serve(migauth, sourceFile, work + "/source.out", realm)
                daemons.append(source)
                let (destination, destinationReady) = try await serve(migauth, destinationFile, work + "/destination.out",
                                                                      realm)
                daemons.append(destination)
                let management = try field("management=", in: sourceReady)
                let endpoint = try field("migration=", in: destinationReady)
                let passwordFile = work + "/password"
                try (BenchRealm.password + "\n").write(toFile: passwordFile, atomically: true, encoding: .utf8)
                let clock = ContinuousClock()
                let start = clock.now
                let migrate = try await realm.launch(
                    migauth, ["migrate", "--vm", "bench", "--to", destinationFQDN, "--endpoint", endpoint,
                              "--via", management, "--source-fqdn", sourceFQDN, "--realm", realm.name,
                              "--local-address", workstationAddress, "--sign-on", "credssp",
                              "--user", BenchRealm.user, "--password-file", passwordFile],
                    outputPath: work + "/migrate.out")
                let exit = await migrate.wait()
                let elapsed = QEMUBench.milliseconds(clock.now - start)
                guard exit.status == 0, !exit.signaled else {
                    throw BenchError("migauth migrate exited \(exit.status): \(text(work + "/migrate.out"))")
                }
                var f = QEMUBench.Figures(name: "two migauth daemons, CredSSP shell, Kerberos move", transferred: 0,
                                          totalMilliseconds: .nan, downtimeMilliseconds: .nan)
                f.endToEndMilliseconds = elapsed
                f.note = "end to end only (the daemons own their QEMUs' monitors); includes the CredSSP sign-on, "
                    + "the Kerberos handshake and starting the destination's QEMU"
                for d in daemons { await d.stop(grace: .seconds(20)) }
                return f
            } catch {
                for d in daemons { await d.stop(grace: .seconds(20)) }
                throw error
            }
        }
    }

    /// `migauth serve --config file` with the realm's environment (killed if the bench dies), output to `out`;
    /// returns the process and its READY line.
    static func serve(_ migauth: String, _ file: String, _ out: String,
                      _ realm: TestRealm) async throws -> (ChildProcess, String) {
        let daemon = try await realm.launch(migauth, ["serve", "--config", file], outputPath: out)
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if let line = text(out).split(separator: "\n").first(where: { $0.hasPrefix("READY ") }) {
                return (daemon, String(line))
            }
            guard daemon.isRunning else { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        await daemon.stop()
        throw BenchError("migauth serve --config \(file) did not start: \(text(out).suffix(600))")
    }

    /// `management=ADDR:PORT` → `ADDR:PORT` from a READY line.
    static func field(_ prefix: String, in line: String) throws -> String {
        guard let value = line.split(separator: " ").first(where: { $0.hasPrefix(prefix) })?.dropFirst(prefix.count) else {
            throw BenchError("no \(prefix) in \(line)")
        }
        return String(value)
    }

    static func text(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    /// `name` next to this executable (the same build).
    static func executable(_ name: String) throws -> String {
        let here = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let path = here.appendingPathComponent(name).path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw BenchError("\(path) is missing: build the migauth product too (swift build --product migauth)")
        }
        return path
    }
}
