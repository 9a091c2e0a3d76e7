import Foundation
import Hosts
@testable import MigrationService
import QEMU
import Testing
import TestRealm

/// Two network namespaces the test creates (unique names), joined by a veth pair on 192.168.10.0/24 (the
/// seed's network: .11 the source, .12 the destination), each with its loopback up and a relay to the
/// shared realm's KDC on its 127.0.0.1 (the relay's listening sockets are made inside the namespaces, its
/// connections to the KDC in the test's own).
struct NetnsLab {
    let a: String
    let b: String
    static let sourceAddress = "192.168.10.11"
    static let destinationAddress = "192.168.10.12"

    /// iproute2's `ip` (Debian: package iproute2).
    static let ipPath = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    /// Runs `ip args`; returns its status and stderr.
    @discardableResult
    static func ip(_ args: [String]) -> (Int32, String) {
        let p = Process()
        guard let ipPath else { return (-1, "no ip") }
        p.executableURL = URL(fileURLWithPath: ipPath)
        p.arguments = args
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        do { try p.run() } catch { return (-1, "\(error)") }
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
    }

    /// Why network namespaces cannot be used here (nil: they can): a probe namespace is added and deleted.
    static let unavailable: String? = {
        guard ipPath != nil else { return "iproute2's ip is not installed (Debian iproute2)" }
        let probe = "migauth-probe-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        let (status, err) = ip(["netns", "add", probe])
        guard status == 0 else { return "network namespaces are not permitted here (ip netns add: \(err.trimmingCharacters(in: .whitespacesAndNewlines)))" }
        ip(["netns", "del", probe])
        return nil
    }()

    static func make(suffix: String) throws -> NetnsLab {
        let lab = NetnsLab(a: "migauth-\(suffix)-a", b: "migauth-\(suffix)-b")
        let va = "ma\(suffix)", vb = "mb\(suffix)"  // interface names: at most 15 bytes
        let steps: [[String]] = [
            ["netns", "add", lab.a], ["netns", "add", lab.b],
            ["link", "add", va, "type", "veth", "peer", "name", vb],
            ["link", "set", va, "netns", lab.a], ["link", "set", vb, "netns", lab.b],
            ["-n", lab.a, "addr", "add", "\(sourceAddress)/24", "dev", va], ["-n", lab.a, "link", "set", va, "up"],
            ["-n", lab.a, "link", "set", "lo", "up"],
            ["-n", lab.b, "addr", "add", "\(destinationAddress)/24", "dev", vb], ["-n", lab.b, "link", "set", vb, "up"],
            ["-n", lab.b, "link", "set", "lo", "up"],
        ]
        for step in steps {
            let (status, err) = ip(step)
            guard status == 0 else {
                lab.remove()
                ip(["link", "del", va])
                throw NetnsError.ip(step.joined(separator: " "), err)
            }
        }
        return lab
    }

    /// Deletes both namespaces (and so the veth pair).
    func remove() {
        Self.ip(["netns", "del", a])
        Self.ip(["netns", "del", b])
    }

    /// `executable arguments` run inside `namespace`.
    static func inside(_ namespace: String, _ executable: String, _ arguments: [String]) -> (String, [String]) {
        (ipPath ?? "ip", ["netns", "exec", namespace, executable] + arguments)
    }

    static let relayScript = """
        import ctypes, os, socket, sys, threading
        libc = ctypes.CDLL(None, use_errno=True)
        CLONE_NEWNET = 0x40000000
        def enter(fd):
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
        target = int(sys.argv[1])
        home = os.open("/proc/self/ns/net", os.O_RDONLY)
        listeners, port = [], 0
        for name in sys.argv[2:]:
            fd = os.open("/run/netns/" + name, os.O_RDONLY)
            enter(fd)
            os.close(fd)
            s = socket.socket()
            s.bind(("127.0.0.1", port))
            s.listen(16)
            port = s.getsockname()[1]
            listeners.append(s)
        enter(home)
        print(port, flush=True)
        def pipe(a, b):
            try:
                while True:
                    data = a.recv(65536)
                    if not data:
                        break
                    b.sendall(data)
            except OSError:
                pass
            finally:
                try:
                    b.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
        def serve(listener):
            while True:
                c, _ = listener.accept()
                u = socket.create_connection(("127.0.0.1", target))
                threading.Thread(target=pipe, args=(c, u), daemon=True).start()
                threading.Thread(target=pipe, args=(u, c), daemon=True).start()
        for l in listeners:
            threading.Thread(target=serve, args=(l,), daemon=True).start()
        threading.Event().wait()
        """
}

enum NetnsError: Error { case ip(String, String), relay(String) }

@Suite("Deployment off loopback: two daemons in two network namespaces on 192.168.10.0/24", .serialized,
       .timeLimit(.minutes(5)),
       .enabled(if: NetnsLab.unavailable == nil, "\(NetnsLab.unavailable ?? "")"),
       .enabled(if: QEMULab.available, "qemu-system-x86_64 is not installed (Debian qemu-system-x86)"))
struct NetnsDeployTests {
    @Test("N1 on a real interface refuses the move; after a SIGHUP reload a running QEMU guest live-migrates from 192.168.10.11 to 192.168.10.12 between two `migauth serve` processes")
    func twoNamespaces() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        try await lab.realm.setAllowedToDelegate(
            "host/\(lab.sourceFQDN)",
            targets: [MigrationServiceNames.migrationPrincipal(fqdn: lab.destinationFQDN, realm: lab.realmName)])
        let net = try NetnsLab.make(suffix: lab.suffix)
        var processes: [ChildProcess] = []
        defer {
            for p in processes { p.send(SIGKILL) }
            for pid in QEMULab.processes(mentioning: lab.directory) { kill(pid, SIGKILL) }
            net.remove()
        }
        // The KDC, reachable from both namespaces through the relay.
        let script = lab.directory + "/kdc-relay.py"
        try NetnsLab.relayScript.write(toFile: script, atomically: true, encoding: .utf8)
        let relayOut = lab.directory + "/relay.out"
        let (relayExe, relayArgs) = ChildProcess.dyingWithParent("/usr/bin/python3", [script, String(lab.realm.kdcPort), net.a, net.b])
        processes.append(try await ChildProcess(executable: relayExe, arguments: relayArgs, environment: ["PATH": "/usr/bin:/bin"],
                                          standardOutputPath: relayOut, standardErrorPath: lab.directory + "/relay.err"))
        var relayPort = ""
        for _ in 0..<200 where relayPort.isEmpty {
            relayPort = ((try? String(contentsOfFile: relayOut, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            try await Task.sleep(for: .milliseconds(25))
        }
        guard !relayPort.isEmpty else {
            throw NetnsError.relay((try? String(contentsOfFile: lab.directory + "/relay.err", encoding: .utf8)) ?? "")
        }
        let config = try String(contentsOfFile: lab.realm.krb5ConfigPath, encoding: .utf8)
        let kdc = "127.0.0.1:\(lab.realm.kdcPort)"
        #expect(config.contains(kdc))
        let krb5Config = lab.directory + "/krb5-netns.conf"
        try config.replacingOccurrences(of: kdc, with: "127.0.0.1:\(relayPort)").write(toFile: krb5Config, atomically: true, encoding: .utf8)
        let environment = CLITests.environment(lab.realm, krb5Config: krb5Config)

        // The two hosts, each in its namespace, on the seed's addresses.
        let blob = try QEMULab.blob(in: lab.directory, megabytes: 64)
        let vm = "netns1"
        let sourceFile = lab.directory + "/source.json", destinationFile = lab.directory + "/destination.json"
        try HostConfiguration(
            name: "TestServer01", fqdn: lab.sourceFQDN, address: NetnsLab.sourceAddress, realm: lab.realmName,
            keytab: lab.sourceKeytab, ccacheDirectory: lab.directory, migrationPort: 0,
            allowedUsers: [lab.user], incomingNetworks: [IPv4Subnet("192.168.10.0/24")!],
            vmDirectory: lab.sourceVMs.directory, hosts: [lab.destinationFQDN: NetnsLab.destinationAddress],
            authenticationType: .kerberos,  // Kerberos sign-ons and moves (the default is CredSSP, as in Hyper-V)
            qemu: QEMUHostSettings(binary: QEMULab.binary, runDirectory: lab.directory + "/s"),
            virtualMachines: [QEMULab.declaration(vm, blob: blob)]).save(sourceFile)
        var destination = HostConfiguration(
            name: "TestServer02", fqdn: lab.destinationFQDN, address: NetnsLab.destinationAddress, realm: lab.realmName,
            keytab: lab.destinationKeytab, ccacheDirectory: lab.directory, migrationPort: 0,
            allowedUsers: [lab.user], incomingNetworks: [IPv4Subnet("10.99.0.0/24")!],  // not the veth's network yet
            vmDirectory: lab.destinationVMs.directory,
            authenticationType: .kerberos,  // Kerberos sign-ons and moves (the default is CredSSP, as in Hyper-V)
            qemu: QEMUHostSettings(binary: QEMULab.binary, runDirectory: lab.directory + "/d"))
        try destination.save(destinationFile)
        func serve(_ namespace: String, _ file: String, _ name: String) async throws -> (ChildProcess, String, String) {
            let out = "\(lab.directory)/\(name).out", err = "\(lab.directory)/\(name).err"
            let (exe, args) = NetnsLab.inside(namespace, CLITests.migauth, ["serve", "--config", file])
            let p = try await ChildProcess(executable: exe, arguments: args, environment: environment,
                                     standardOutputPath: out, standardErrorPath: err)
            processes.append(p)
            return (p, out, err)
        }
        let (sourceDaemon, sourceOut, sourceErr) = try await serve(net.a, sourceFile, "source")
        let (destinationDaemon, destinationOut, destinationErr) = try await serve(net.b, destinationFile, "destination")
        let sourceReady = try await CLITests.line(in: sourceOut, startingWith: "READY ")
        let destinationReady = try await CLITests.line(in: destinationOut, startingWith: "READY ")
        #expect(sourceReady.hasPrefix("READY migration=\(NetnsLab.sourceAddress):"))
        #expect(destinationReady.hasPrefix("READY migration=\(NetnsLab.destinationAddress):"))
        let management = try #require(sourceReady.split(separator: " ").first { $0.hasPrefix("management=") }?.dropFirst(11))
        let migration = try #require(destinationReady.split(separator: " ").first { $0.hasPrefix("migration=") }?.dropFirst(10))

        // The workstation is in the destination's namespace: the management connection crosses the veth too.
        let ccache = try await lab.realm.kinit(lab.user, password: lab.userPassword)
        func migrate() async throws -> (Int32, String, String) {
            let id = UUID().uuidString
            let out = "\(lab.directory)/\(id).out", err = "\(lab.directory)/\(id).err"
            let (exe, args) = NetnsLab.inside(net.b, CLITests.migauth, [
                "migrate", "--vm", vm, "--to", lab.destinationFQDN, "--endpoint", String(migration), "--via", String(management),
                "--source-fqdn", lab.sourceFQDN, "--realm", lab.realmName, "--ccache", ccache,
                "--local-address", NetnsLab.destinationAddress])
            let p = try await ChildProcess(executable: exe, arguments: args, environment: environment,
                                     standardOutputPath: out, standardErrorPath: err)
            processes.append(p)
            let state = await p.wait()
            return (state.status, (try? String(contentsOfFile: out, encoding: .utf8)) ?? "",
                    (try? String(contentsOfFile: err, encoding: .utf8)) ?? "")
        }
        let text = { (path: String) in (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

        // N1, on the destination's real interface address.
        let refused = try await migrate()
        #expect(refused.0 == 1, "\(refused)")
        #expect(refused.2.contains("\(NetnsLab.destinationAddress) is not inside TestServer02's incoming migration networks (rule N1)"),
                "\(refused)")
        #expect(refused.2.contains("WSAECONNREFUSED"), "\(refused)")

        destination.incomingNetworks = [IPv4Subnet("192.168.10.0/24")!]
        try destination.save(destinationFile)
        destinationDaemon.send(SIGHUP)
        _ = try await CLITests.line(in: destinationOut, startingWith: "RELOADED")
        let moved = try await migrate()
        #expect(moved.0 == 0, "\(moved) \(text(sourceErr)) \(text(destinationErr))")
        #expect(moved.1.contains("Moved \(vm) to \(lab.destinationFQDN)"), "\(moved)")
        #expect(QEMULab.processes(mentioning: lab.directory + "/s/").isEmpty, "the source's QEMU is gone")
        #expect(QEMULab.processes(mentioning: lab.directory + "/d/").count == 1, "one QEMU at the destination")

        // Both stop cleanly; the destination reports the guest running when it stops it.
        sourceDaemon.send(SIGTERM)
        destinationDaemon.send(SIGTERM)
        let sourceExit = await ServedSourceLab.exit(of: sourceDaemon, within: 60)
        let destinationExit = await ServedSourceLab.exit(of: destinationDaemon, within: 60)
        #expect(sourceExit?.status == 0 && destinationExit?.status == 0, "\(String(describing: sourceExit)) \(String(describing: destinationExit))")
        #expect(text(destinationErr).contains("stopping VM \(vm): QEMU guest, running"), "\(text(destinationErr))")
        #expect(!text(sourceErr).contains("stopping VM \(vm)"))
        #expect(QEMULab.processes(mentioning: lab.directory + "/s/").isEmpty && QEMULab.processes(mentioning: lab.directory + "/d/").isEmpty,
                "no QEMU of the test left")
    }
}
