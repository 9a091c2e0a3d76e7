import ArgumentParser
import Foundation
import GSS
import MigrationService

/// `migauth migrate`: a real live migration over Kerberos, either from the source itself with the
/// user's ccache (`--from-config`) or through the source's management service (`--via`).
/// (`migauth move` is the simulator's Move-VM.)
struct MoveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Move a VM for real: authenticate with Kerberos and stream it to the destination's daemon.",
        discussion: """
        Local move (run on the source): --from-config source-host.json [--ccache PATH]. Remote move (from a \
        workstation): --via ADDR:PORT --source-fqdn FQDN [--realm REALM] [--ccache PATH]; the source then \
        uses constrained delegation (S4U2Proxy). Prints progress on a terminal and, on failure, Hyper-V's \
        exact text on stderr; exit status 1 on failure, 2 on bad arguments.
        """)

    @Option(help: "The virtual machine.") var vm: String
    @Option(help: "The destination's FQDN (its SPN: Microsoft Virtual System Migration Service/FQDN).") var to: String
    @Option(help: "The destination's migration endpoint ADDR:PORT (default: the source's hosts table, port 6600).")
    var endpoint: String?
    @Option(name: .customLong("from-config"), help: "Local move: the source host's configuration (JSON).")
    var fromConfig: String?
    @Option(help: "Remote move: the source's management endpoint ADDR:PORT.") var via: String?
    @Option(name: .customLong("source-fqdn"), help: "Remote move: the source's FQDN (SPN host/FQDN).") var sourceFQDN: String?
    @Option(help: "Realm of the services' principals (default: the source configuration's, or [domain_realm]).")
    var realm: String?
    @Option(name: .customLong("local-address"), help: "Remote move: this workstation's loopback address.")
    var localAddress = "127.0.0.13"
    @Option(help: "The user's credential cache (default: KRB5CCNAME).") var ccache: String?
    @Option(help: "tcpip, compression or smb (default: the source's setting).") var performance: String?
    @Option(help: "Connections for smb.") var channels: Int?

    func validate() throws {
        guard (fromConfig == nil) != (via == nil) else {
            throw ValidationError("Give either --from-config (local move) or --via with --source-fqdn (remote move).")
        }
        if via != nil, sourceFQDN == nil { throw ValidationError("--via needs --source-fqdn.") }
        if let performance, PerformanceOption(parsing: performance) == nil {
            throw ValidationError("--performance must be tcpip, compression or smb.")
        }
    }

    func run() throws {
        let report: MigrationReport
        do throws(MigrationServiceError) {
            report = try runBlocking { () async throws(MigrationServiceError) in try await self.perform() }
        } catch {
            if isatty(STDERR_FILENO) != 0 { FileHandle.standardError.write(Data("\n".utf8)) }
            fail(error)
        }
        emit("Moved \(report.vm) to \(to): \(report.bytes) bytes, SHA-256 \(report.sha256), "
             + "\(report.performance) over \(report.channels) connection(s), authenticated as \(report.destinationPrincipal)"
             + (report.queuedAt.map { ", waited in queue at position \($0)" } ?? ""))
    }

    private func perform() async throws(MigrationServiceError) -> MigrationReport {
        let option = performance.flatMap(PerformanceOption.init(parsing:))
        let credential = try userCredential()
        let showProgress = isatty(STDERR_FILENO) != 0
        let progress: @Sendable (MigrationProgress) async -> Void = { p in
            guard showProgress else { return }
            let percent = p.totalBytes == 0 ? 100 : Int(p.bytesSent * 100 / p.totalBytes)
            let phase: String = switch p.phase {
            case .connecting: "connecting"
            case .queued(let position): "queued at \(position)"
            case .transferring: "transferring"
            case .committing: "committing"
            case .committed: "committed"
            }
            FileHandle.standardError.write(Data("\r\(phase) \(percent)% (\(p.bytesSent)/\(p.totalBytes) bytes)   ".utf8))
        }
        let target = try endpoint.map { text throws(MigrationServiceError) in try ServiceEndpoint(parsing: text) }
        if let fromConfig {
            let configuration = try HostConfiguration.load(fromConfig)
            let destination: ServiceEndpoint
            if let target {
                destination = target
            } else if let address = configuration.resolve(to) {
                destination = try ServiceEndpoint(address: address, port: 6600)
            } else {
                throw MigrationServiceError.configuration("\(to) is not in \(configuration.name)'s hosts table; give --endpoint",
                                                          stage: .source)
            }
            let source = try MigrationSource(localAddress: configuration.address, vmDirectory: configuration.vmDirectory,
                                             hostName: configuration.name)
            let report = try await source.move(
                vm: vm, to: MigrationTarget(fqdn: to, endpoint: destination, realm: realm ?? configuration.realm),
                credential: credential,
                options: MoveOptions(performance: option ?? configuration.performanceOption,
                                     channels: channels ?? configuration.smbChannels, progress: progress))
            if showProgress { FileHandle.standardError.write(Data("\n".utf8)) }
            return report
        }
        let client = try ManagementClient(localAddress: localAddress)
        let source = ManagementClient.Source(fqdn: sourceFQDN ?? "", endpoint: try ServiceEndpoint(parsing: via ?? ""),
                                             realm: realm)
        let report = try await client.requestMove(vm: vm, destination: to, endpoint: target, via: source,
                                                  credential: credential, performance: option,
                                                  channels: channels ?? 0, progress: progress)
        if showProgress { FileHandle.standardError.write(Data("\n".utf8)) }
        return report
    }

    /// The user's credential from `--ccache` (nil: the default ccache, read when first used).
    private func userCredential() throws(MigrationServiceError) -> GSSCredential? {
        guard let ccache else { return nil }
        do {
            return try GSSCredential.acquire(store: GSSCredentialStore(ccache: ccache))
        } catch {
            throw MigrationServiceError.credentialUnavailable(error, destination: to)
        }
    }
}
