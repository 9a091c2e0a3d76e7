import Foundation
import GSS
import Hosts
@testable import MigrationService
import MigrationRules
import Testing
import TestRealm
import WindowsStatus

/// `migauth serve` and `migauth migrate` as separate processes against the real realm.
@Suite("migauth serve / migrate", .timeLimit(.minutes(3)))
struct CLITests {
    static var migauth: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("migauth").path
    }

    static func environment(_ realm: TestRealm, krb5Config: String? = nil) -> [String: String] {
        var e = realm.environment
        e["PATH"] = "/usr/bin:/bin:/usr/sbin:/sbin"
        if let krb5Config { e["KRB5_CONFIG"] = krb5Config }
        return e
    }

    /// Runs `migauth args` to completion: (status, stdout, stderr).
    static func run(_ args: [String], _ lab: ServiceLab, environment: [String: String]) async throws -> (Int32, String, String) {
        let id = UUID().uuidString
        let out = "\(lab.directory)/\(id).out", err = "\(lab.directory)/\(id).err"
        let child = try await ChildProcess(executable: migauth, arguments: args, environment: environment,
                                     standardOutputPath: out, standardErrorPath: err)
        let state = await child.wait()
        return (state.status, (try? String(contentsOfFile: out, encoding: .utf8)) ?? "",
                (try? String(contentsOfFile: err, encoding: .utf8)) ?? "")
    }

    /// Waits until the file has a line starting with `prefix` and returns it.
    static func line(in path: String, startingWith prefix: String, after skip: Int = 0) async throws -> String {
        for _ in 0..<400 {
            let lines = ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").dropFirst(skip)
            if let l = lines.first(where: { $0.hasPrefix(prefix) }) { return String(l) }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw CLIError.noLine(prefix, (try? String(contentsOfFile: path, encoding: .utf8)) ?? "")
    }

    enum CLIError: Error { case noLine(String, String) }

    func sourceConfiguration(_ lab: ServiceLab, hosts: [String: String] = [:]) -> HostConfiguration {
        HostConfiguration(name: "TestServer01", fqdn: lab.sourceFQDN, address: ServiceLab.sourceAddress, realm: lab.realmName,
                          keytab: lab.sourceKeytab, ccacheDirectory: lab.directory, migrationPort: 0,
                          allowedUsers: [lab.user], incomingNetworks: [IPv4Subnet("127.0.0.11/32")!],
                          vmDirectory: lab.sourceVMs.directory, hosts: hosts, authenticationType: .kerberos)
    }

    @Test("serve prints READY, migrate moves a VM, SIGHUP reloads P1, SIGTERM stops")
    func serveAndMigrate() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        var destination = HostConfiguration(
            name: "TestServer02", fqdn: lab.destinationFQDN, address: ServiceLab.destinationAddress, realm: lab.realmName,
            keytab: lab.destinationKeytab, ccacheDirectory: lab.directory, migrationPort: 0,
            allowedUsers: [lab.user], incomingNetworks: [IPv4Subnet("127.0.0.12/32")!],
            vmDirectory: lab.destinationVMs.directory, authenticationType: .kerberos)
        let destinationFile = lab.directory + "/destination.json"
        try destination.save(destinationFile)
        let sourceFile = lab.directory + "/source.json"
        try sourceConfiguration(lab).save(sourceFile)
        let out = lab.directory + "/serve.out"
        let env = Self.environment(lab.realm)
        let daemon = try await ChildProcess(executable: Self.migauth, arguments: ["serve", "--config", destinationFile],
                                      environment: env, standardOutputPath: out,
                                      standardErrorPath: lab.directory + "/serve.err")
        let ready = try await Self.line(in: out, startingWith: "READY ")
        let migration = try #require(ready.split(separator: " ").first { $0.hasPrefix("migration=") }?.dropFirst(10))
        #expect(migration.hasPrefix("127.0.0.12:"))
        #expect(ready.contains(" management=127.0.0.12:"))

        let bytes = try lab.createVM("vm-cli", size: 300_000)
        let ccache = try await lab.realm.kinit(lab.user, password: lab.userPassword)
        let ok = try await Self.run(["migrate", "--vm", "vm-cli", "--to", lab.destinationFQDN, "--endpoint", String(migration),
                                     "--from-config", sourceFile, "--ccache", ccache, "--performance", "smb"], lab, environment: env)
        #expect(ok.0 == 0, "\(ok)")
        #expect(ok.1.contains("Moved vm-cli to \(lab.destinationFQDN): 300000 bytes"), "\(ok)")
        let arrived = lab.contents(lab.destinationVMs, "vm-cli") == bytes
        #expect(arrived)

        // P1 changes in the file; SIGHUP applies it.
        destination.allowedUsers = []
        try destination.save(destinationFile)
        daemon.send(SIGHUP)
        _ = try await Self.line(in: out, startingWith: "RELOADED")
        try lab.createVM("vm-cli2", size: 1000)
        let denied = try await Self.run(["migrate", "--vm", "vm-cli2", "--to", lab.destinationFQDN, "--endpoint", String(migration),
                                         "--from-config", sourceFile, "--ccache", ccache], lab, environment: env)
        #expect(denied.0 == 1)
        let expected = MigrationMessages.permissionDenied(user: lab.userPrincipal, host: "TestServer02", stage: .destination)
        #expect(denied.2.hasPrefix(expected + "\n"), "\(denied)")

        daemon.send(SIGTERM)
        let state = await daemon.wait()
        #expect(state.status == 0 && !state.signaled)
        _ = try await Self.line(in: out, startingWith: "STOPPED")
    }

    @Test("migrate --via: a workstation asks the source daemon, which delegates (S4U2Proxy) to the destination")
    func remoteThroughDaemon() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        try await lab.realm.setAllowedToDelegate(
            "host/\(lab.sourceFQDN)",
            targets: [MigrationServiceNames.migrationPrincipal(fqdn: lab.destinationFQDN, realm: lab.realmName)])
        let destination = try await lab.startDestination()
        let port = try requireEndpoint(destination).port
        let source = sourceConfiguration(lab, hosts: [lab.destinationFQDN: ServiceLab.destinationAddress])
        let sourceFile = lab.directory + "/source.json"
        try source.save(sourceFile)
        let out = lab.directory + "/source-serve.out"
        let env = Self.environment(lab.realm)
        let daemon = try await ChildProcess(executable: Self.migauth, arguments: ["serve", "--config", sourceFile],
                                      environment: env, standardOutputPath: out,
                                      standardErrorPath: lab.directory + "/source-serve.err")
        let ready = try await Self.line(in: out, startingWith: "READY ")
        #expect(ready.hasPrefix("READY migration=127.0.0.11:"))
        let management = try #require(ready.split(separator: "=").last)
        let bytes = try lab.createVM("vm-via", size: 200_000)
        let ccache = try await lab.realm.kinit(lab.user, password: lab.userPassword)
        let r = try await Self.run(["migrate", "--vm", "vm-via", "--to", lab.destinationFQDN,
                                    "--endpoint", "\(ServiceLab.destinationAddress):\(port)",
                                    "--via", String(management), "--source-fqdn", lab.sourceFQDN, "--realm", lab.realmName,
                                    "--ccache", ccache], lab, environment: env)
        daemon.send(SIGTERM)
        _ = await daemon.wait()
        let events = await destination.events()
        await destination.stop()
        #expect(r.0 == 0, "\(r)")
        #expect(r.1.contains("authenticated as \(lab.userPrincipal)"), "\(r)")
        #expect(events.contains(.started(vm: "vm-via", user: lab.userPrincipal)))
        let arrived = lab.contents(lab.destinationVMs, "vm-via") == bytes
        #expect(arrived)
    }

    @Test("no ccache: migrate prints the seed's two lines and exits 1")
    func noCredentials() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination()
        let sourceFile = lab.directory + "/source.json"
        try sourceConfiguration(lab).save(sourceFile)
        try lab.createVM("vm-nocc", size: 1000)
        let r = try await Self.run(["migrate", "--vm", "vm-nocc", "--to", lab.destinationFQDN,
                                    "--endpoint", try requireEndpoint(destination).description,
                                    "--from-config", sourceFile, "--ccache", "FILE:\(lab.directory)/missing-ccache"],
                                   lab, environment: Self.environment(lab.realm))
        await destination.stop()
        #expect(r.0 == 1)
        #expect(r.2.hasPrefix("""
            Virtual machine migration operation failed at migration Source.
            Failed to establish a connection with host \(lab.destinationFQDN): No credentials are available in the security package (0x8009030E).

            """), "\(r)")
        #expect(lab.sourceVMs.contains("vm-nocc"))
    }

    @Test("KDC unreachable → 0x80090311; the retry works once the KDC is back")
    func kdcDown() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination()
        // The source process reaches the KDC through a relay that the test stops and restarts.
        let relay = try await TCPRelay.start(to: Int(lab.realm.kdcPort))
        let config = try String(contentsOfFile: lab.realm.krb5ConfigPath, encoding: .utf8)
        let kdc = "127.0.0.1:\(lab.realm.kdcPort)"
        #expect(config.contains(kdc))
        let krb5Config = lab.directory + "/krb5-relay.conf"
        try config.replacingOccurrences(of: kdc, with: "127.0.0.1:\(relay.port)").write(toFile: krb5Config, atomically: true, encoding: .utf8)
        let env = Self.environment(lab.realm, krb5Config: krb5Config)
        let sourceFile = lab.directory + "/source.json"
        try sourceConfiguration(lab).save(sourceFile)
        let bytes = try lab.createVM("vm-kdc", size: 50_000)
        let ccache = try await lab.realm.kinit(lab.user, password: lab.userPassword)  // a TGT; no service ticket yet
        let args = ["migrate", "--vm", "vm-kdc", "--to", lab.destinationFQDN, "--endpoint", try requireEndpoint(destination).description,
                    "--from-config", sourceFile, "--ccache", ccache]

        await relay.stop()
        let down = try await Self.run(args, lab, environment: env)
        #expect(down.0 == 1)
        #expect(down.2.hasPrefix(MigrationMessages.connectionFailure(destination: lab.destinationFQDN,
                                                                     status: .noAuthenticatingAuthority) + "\n"), "\(down)")
        #expect(lab.sourceVMs.contains("vm-kdc"))

        try await relay.restart()
        let back = try await Self.run(args, lab, environment: env)
        await relay.stop()
        await destination.stop()
        #expect(back.0 == 0, "\(back)")
        let arrived = lab.contents(lab.destinationVMs, "vm-kdc") == bytes
        #expect(arrived)
    }
}
