import Foundation
import GSS
@testable import MigrationService
import Testing
import TestRealm

/// Kill -9 of each party of a file move at each phase (issue 15's fault matrix), with separate
/// `migauth serve` / `migauth migrate` processes: the source CLI (a local move, `--from-config`), the
/// source daemon (a remote move, `--via`), the destination daemon, the KDC (the source reaches it
/// through a relay that the test closes: every connection reset, nothing answers), and the directory (the
/// KDC's slapd, in a realm of the cell's own: the KDC runs on and reads a directory that is gone). A ``FaultLink`` between
/// source and destination stops the move at the phase. Afterwards:
/// - the VM is whole and registered on exactly one host — or, when the `commit` never arrived, registered
///   nowhere with the source's whole copy in `.outgoing/`, which `migauth serve` names at its next start;
/// - nothing half-registered: no staging file at the destination once its daemon (re)started;
/// - the killed daemon starts again (READY), and no secret is on disk: no file under the lab holds the
///   user's password (UTF-8 or UTF-16) or a PEM private key (keytabs and ccaches are expected).
///
/// The 21 cells run one after the other (the first 18 took ~3 min alone on two cores; each directory cell also
/// starts a realm); `MIGAUTH_FAULT_CELLS` picks some.
@Suite("Fault matrix: kill -9 of each party at each phase of a file move", .serialized, .timeLimit(.minutes(5)))
struct FaultMatrixTests {
    enum Party: String, Sendable, CaseIterable, CustomStringConvertible {
        case sourceCLI, sourceDaemon, destinationDaemon, kdc, ldap
        var description: String { rawValue }
        /// The KDC or its directory: consulted only during the handshake, reached by the test through a relay
        /// or a realm of the cell's own (not a process of the move).
        var isKerberosService: Bool { self == .kdc || self == .ldap }
        /// What the source reports when this service is gone before its service-ticket request: no KDC answers
        /// (SEC_E_NO_AUTHORITY), or the KDC answers from no directory (MIT's KRB_ERR_GENERIC, e-text
        /// "PROCESS_TGS", read as SEC_E_INTERNAL_ERROR).
        var refusalBeforeTicket: [String] { self == .kdc ? ["(0x80090311)"] : ["(0x80090304)", "PROCESS_TGS"] }
    }

    static let vmSize = 4 * 1024 * 1024

    /// Every party at every phase; the KDC and its directory only where they could matter to a running move
    /// (neither is consulted after the handshake, so killing one then must change nothing).
    /// `MIGAUTH_FAULT_CELLS=all` runs them all, `party:phase,…` (say `kdc:beforeOffer`) only those.
    static let cells: [(Party, FaultLink.Phase)] = {
        let all: [(Party, FaultLink.Phase)] =
            [Party.sourceCLI, .sourceDaemon, .destinationDaemon].flatMap { party in FaultLink.Phase.allCases.map { (party, $0) } }
            + [Party.kdc, .ldap].flatMap { party in [(party, FaultLink.Phase.beforeOffer), (party, .midStream), (party, .commitHeld)] }
        guard let only = ProcessInfo.processInfo.environment["MIGAUTH_FAULT_CELLS"], !only.isEmpty, only != "all" else { return all }
        let wanted = Set(only.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        return all.filter { wanted.contains("\($0.0):\($0.1)") }
    }()

    /// A `migauth serve` child; `output` holds stdout and stderr.
    struct Daemon {
        let process: ChildProcess
        let output: String
        let migration: String
        let management: String
    }

    static func serve(_ config: String, _ lab: ServiceLab, _ env: [String: String], tag: String) async throws -> Daemon {
        let output = "\(lab.directory)/\(tag).log"
        let process = try await ChildProcess(executable: CLITests.migauth, arguments: ["serve", "--config", config],
                                       environment: env, standardOutputPath: output, standardErrorPath: output)
        let ready = try await CLITests.line(in: output, startingWith: "READY ")
        func field(_ name: String) -> String {
            ready.split(separator: " ").first { $0.hasPrefix(name + "=") }.map { String($0.dropFirst(name.count + 1)) } ?? ""
        }
        return Daemon(process: process, output: output, migration: field("migration"), management: field("management"))
    }

    /// Every regular file under `directory` that holds one of `needles`.
    static func files(under directory: String, containing needles: [[UInt8]]) -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: directory) else { return [] }
        var hits: [String] = []
        while let relative = walker.nextObject() as? String {
            let path = directory + "/" + relative
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
                  let data = FileManager.default.contents(atPath: path) else { continue }
            let bytes = [UInt8](data)
            if needles.contains(where: { needle in
                bytes.count >= needle.count && (0...(bytes.count - needle.count)).contains { bytes[$0..<($0 + needle.count)].elementsEqual(needle) }
            }) {
                hits.append(relative)
            }
        }
        return hits
    }

    @Test("kill -9 of one party at one phase: the VM is whole on exactly one host, nothing half-registered, the next start cleans up, no secret on disk",
          arguments: cells)
    func cell(party: Party, phase: FaultLink.Phase) async throws {
        // Killing slapd would break the shared realm's other users: the directory's cells get a realm of their own.
        let ownRealm = party == .ldap
            ? try await TestRealm.start(.init(name: "FAULTLDAP.TEST", backend: .ldap, domains: ["delegation.test"])) : nil
        let lab: ServiceLab
        do { lab = try await ServiceLab.make(realm: ownRealm) } catch {
            await ownRealm?.shutdown()
            throw error
        }
        defer { lab.remove() }
        let vm = "vm-\(party)-\(phase)"
        // The KDC as the processes see it: a relay the test can take away (the shared KDC serves other suites).
        let kdc = try await TCPRelay.start(to: Int(lab.realm.kdcPort))
        let config = try String(contentsOfFile: lab.realm.krb5ConfigPath, encoding: .utf8)
        let krb5Config = lab.directory + "/krb5.conf"
        try config.replacingOccurrences(of: "127.0.0.1:\(lab.realm.kdcPort)", with: "127.0.0.1:\(kdc.port)")
            .write(toFile: krb5Config, atomically: true, encoding: .utf8)
        let env = CLITests.environment(lab.realm, krb5Config: krb5Config)
        let remote = party == .sourceDaemon
        if remote {
            try await lab.realm.setAllowedToDelegate(
                "host/\(lab.sourceFQDN)",
                targets: [MigrationServiceNames.migrationPrincipal(fqdn: lab.destinationFQDN, realm: lab.realmName)])
        }

        let destinationFile = lab.directory + "/destination.json"
        try HostConfiguration(name: "TestServer02", fqdn: lab.destinationFQDN, address: ServiceLab.destinationAddress,
                              realm: lab.realmName, keytab: lab.destinationKeytab, ccacheDirectory: lab.directory,
                              migrationPort: 0, allowedUsers: [lab.user], incomingNetworks: [IPv4Subnet("127.0.0.12/32")!],
                              vmDirectory: lab.destinationVMs.directory, authenticationType: .kerberos).save(destinationFile)
        let sourceFile = lab.directory + "/source.json"
        try HostConfiguration(name: "TestServer01", fqdn: lab.sourceFQDN, address: ServiceLab.sourceAddress, realm: lab.realmName,
                              keytab: lab.sourceKeytab, ccacheDirectory: lab.directory, migrationPort: 0,
                              allowedUsers: [lab.user], incomingNetworks: [IPv4Subnet("127.0.0.11/32")!],
                              vmDirectory: lab.sourceVMs.directory, authenticationType: .kerberos).save(sourceFile)
        var destination: Daemon? = try await Self.serve(destinationFile, lab, env, tag: "destination")
        let destinationPort = try #require(destination?.migration.split(separator: ":").last.flatMap { Int($0) })
        let link = try await FaultLink.start(to: ServiceLab.destinationAddress, port: destinationPort, phase: phase, vmSize: Self.vmSize)
        var source: Daemon? = remote ? try await Self.serve(sourceFile, lab, env, tag: "source") : nil

        let bytes = try lab.createVM(vm, size: Self.vmSize)
        let ccache = try await lab.realm.kinit(lab.user, password: lab.userPassword)
        var args = ["migrate", "--vm", vm, "--to", lab.destinationFQDN, "--endpoint", "127.0.0.1:\(link.port)",
                    "--ccache", ccache, "--performance", "tcpip"]
        args += remote ? ["--via", source?.management ?? "", "--source-fqdn", lab.sourceFQDN, "--realm", lab.realmName]
                       : ["--from-config", sourceFile]
        let cliOutput = lab.directory + "/migrate.log"
        let cli = try await ChildProcess(executable: CLITests.migauth, arguments: args, environment: env,
                                   standardOutputPath: cliOutput, standardErrorPath: cliOutput)

        // Wait for the phase (or for the CLI to end first, which fails the cell below).
        let reachedPhase = await withTaskGroup(of: Bool.self) { group in
            group.addTask { for await _ in link.reached { return true }; return false }
            group.addTask {  // polled: a task waiting for the exit could not be cancelled
                while cli.isRunning, !Task.isCancelled { try? await Task.sleep(for: .milliseconds(20)) }
                return false
            }
            group.addTask { try? await Task.sleep(for: .seconds(60)); return false }
            defer { group.cancelAll() }
            return await group.next() ?? false
        }
        #expect(reachedPhase, "the move never reached \(phase): \((try? String(contentsOfFile: cliOutput, encoding: .utf8)) ?? "")")
        if phase == .commitDelivered {
            // `commit` arrived; give the destination the moment it needs to register (it answers `committed` after).
            for _ in 0..<200 where !lab.destinationVMs.contains(vm) { try await Task.sleep(for: .milliseconds(25)) }
        }

        // The kill.
        switch party {
        case .sourceCLI: cli.send(SIGKILL)
        case .sourceDaemon: source?.process.send(SIGKILL)
        case .destinationDaemon: destination?.process.send(SIGKILL)
        case .kdc:
            await kdc.stop()
            link.release()
        case .ldap:
            await lab.realm.killDirectory()
            link.release()
        }
        let killed: ChildProcess? = switch party {
        case .sourceCLI: cli
        case .sourceDaemon: source?.process
        case .destinationDaemon: destination?.process
        case .kdc, .ldap: nil
        }
        if let killed {
            let state = await killed.wait()
            #expect(state.signaled && state.status == SIGKILL,
                    "\(state); migrate: \((try? String(contentsOfFile: cliOutput, encoding: .utf8)) ?? "")")
        }
        // The survivors notice (a reset, or the link closed behind a held frame).
        if !party.isKerberosService { await link.close() }
        let cliState = await cli.wait()
        let cliText = (try? String(contentsOfFile: cliOutput, encoding: .utf8)) ?? ""

        // A surviving destination removes a dead move's staging file when its connection ends; a restarted
        // one clears `.staging/` at start.
        if party == .destinationDaemon {
            destination = try await Self.serve(destinationFile, lab, env, tag: "destination-restarted")
        }
        for _ in 0..<200 where !lab.destinationVMs.stagingFiles().isEmpty { try await Task.sleep(for: .milliseconds(25)) }
        let staging = lab.destinationVMs.stagingFiles()
        // The next start of the source (its daemon, or one started now when the mover was the CLI) names a kept copy.
        let kept = lab.sourceVMs.uncertainMoves().filter { $0.vm == vm }
        if party == .sourceDaemon || !kept.isEmpty {
            await source?.process.stop()
            source = try await Self.serve(sourceFile, lab, env, tag: "source-restarted")
        }
        await source?.process.stop()
        await destination?.process.stop()
        if party.isKerberosService { await link.close() }
        if party != .kdc { await kdc.stop() }  // the KDC's cell stopped its relay at the kill
        await ownRealm?.shutdown()

        // The invariant.
        let atSource = lab.contents(lab.sourceVMs, vm)
        let atDestination = lab.contents(lab.destinationVMs, vm)
        let registered = [atSource, atDestination].compactMap { $0 }
        let context = "\(party) killed at \(phase); migrate exited \(cliState): \(cliText)"
        #expect(registered.count <= 1, "registered on both hosts — \(context)")
        #expect(registered.allSatisfy { $0 == bytes }, "a registered copy is not whole — \(context)")
        if registered.isEmpty {
            // Only when `commit` left the source and no `committed` came back: the whole copy waits in `.outgoing/`.
            #expect([.commitHeld, .commitDelivered].contains(phase), "the VM is registered nowhere — \(context)")
            #expect(kept.count == 1 && kept.first.flatMap { FileManager.default.contents(atPath: $0.path) }.map { [UInt8]($0) } == bytes,
                    "registered nowhere and no whole copy kept — \(context)")
        }
        if !kept.isEmpty {
            let log = (try? String(contentsOfFile: lab.directory + "/source-restarted.log", encoding: .utf8)) ?? ""
            #expect(log.contains("uncertain move of '\(vm)'"), "the restarted source does not name the kept copy: \(log)")
        }
        #expect(staging.isEmpty, "half-registered: \(staging) — \(context)")
        switch (party, phase) {
        case (.kdc, .beforeOffer), (.ldap, .beforeOffer):
            // `hello` went through and the source's next frame (`suites`) is held: the source asks the KDC for the
            // service ticket right after sending it (its channel bindings need the opening's transcript), so the
            // kill races that request. Either the ticket came first and the move completes once the frames are
            // released, or the service was gone (``Party/refusalBeforeTicket``) and the VM stays at the source.
            if cliState.status == 0 {
                #expect(atDestination == bytes && atSource == nil && kept.isEmpty, "\(context)")
            } else {
                #expect(cliState.status == 1 && party.refusalBeforeTicket.allSatisfy(cliText.contains), "\(context)")
                #expect(atSource == bytes && atDestination == nil && kept.isEmpty, "\(context)")
            }
        case (.kdc, _), (.ldap, _), (_, .afterCommit):
            // Neither the KDC nor its directory is needed once the context is made; after `committed` the move is done.
            #expect(atDestination == bytes && atSource == nil, "\(context)")
            if party.isKerberosService { #expect(cliState.status == 0 && kept.isEmpty, "\(context)") }
        case (_, .beforeOffer), (_, .midStream):
            #expect(atSource == bytes && atDestination == nil, "\(context)")
            #expect(kept.isEmpty, "\(context)")
        case (_, .commitDelivered):
            #expect(atDestination == bytes && atSource == nil, "\(context)")
        case (_, .commitHeld):
            #expect(atDestination == nil, "\(context)")
        }
        if party != .sourceCLI, !party.isKerberosService, phase != .afterCommit {
            #expect(cliState.status == 1, "the CLI must report the failed move — \(context)")
        }

        let secrets = [Array(lab.userPassword.utf8), Array(lab.userPassword.utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }),
                       Array("PRIVATE KEY-----".utf8)]
        let found = Self.files(under: lab.directory, containing: secrets)
        #expect(found.isEmpty, "secrets on disk: \(found) — \(context)")
    }
}
