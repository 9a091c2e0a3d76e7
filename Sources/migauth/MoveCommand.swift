import ArgumentParser
import Foundation
import GSS
import MigrationRules
import MigrationService
import WindowsStatus

/// `migauth migrate`: a real live migration, either from the source itself (`--from-config`: a console sign-on) or
/// through the source's management service (`--via`: a remote shell signed on with Kerberos or CredSSP).
/// (`migauth move` is the simulator's Move-VM.)
struct MoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Move a VM for real: authenticate with Kerberos or CredSSP and stream it to the destination's daemon.",
        discussion: """
        Local move (a console sign-on on the source): --from-config source-host.json; with the source's \
        authenticationType Kerberos it uses the user's ccache [--ccache PATH], with CredSSP it needs --user and \
        --password-file (the console sign-on's password). Remote move (a remote shell to the source): --via \
        ADDR:PORT --source-fqdn FQDN [--realm REALM] and --sign-on kerberos [--ccache PATH] (a network logon: \
        the source needs constrained delegation, and a CredSSP source has no credentials: 0x8009030E) or \
        --sign-on credssp --user USER --password-file FILE (the password reaches the source). Passwords are \
        never taken from the command line: FILE's first line, or '-' for standard input. Prints progress on a \
        terminal and, on failure, Hyper-V's exact text on stderr; exit status 1 on failure, 2 on bad arguments.
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
    @Option(name: .customLong("sign-on"), help: "Remote move: how the shell signs on to the source: kerberos or credssp.")
    var signOn = "kerberos"
    @Option(help: "CredSSP / console sign-on: the user (name, or user@REALM).") var user: String?
    @Option(name: .customLong("password-file"), help: "CredSSP / console sign-on: a file whose first line is the password ('-': standard input).")
    var passwordFile: String?
    @Option(help: "tcpip, compression or smb (default: the source's setting).") var performance: String?
    @Option(help: "Connections for smb.") var channels: Int?

    func validate() throws {
        guard (fromConfig == nil) != (via == nil) else {
            throw ValidationError("Give either --from-config (local move) or --via with --source-fqdn (remote move).")
        }
        if via != nil, sourceFQDN == nil { throw ValidationError("--via needs --source-fqdn.") }
        guard ["kerberos", "credssp"].contains(signOn.lowercased()) else {
            throw ValidationError("--sign-on must be kerberos or credssp.")
        }
        if via != nil, signOn.lowercased() == "credssp", user == nil || passwordFile == nil {
            throw ValidationError("--sign-on credssp needs --user and --password-file.")
        }
        if (user == nil) != (passwordFile == nil) { throw ValidationError("--user and --password-file go together.") }
        if let performance, PerformanceOption(parsing: performance) == nil {
            throw ValidationError("--performance must be tcpip, compression or smb.")
        }
    }

    func run() async throws {
        let report: MigrationReport
        do throws(MigrationServiceError) {
            report = try await perform()
        } catch {
            if isatty(STDERR_FILENO) != 0 { FileHandle.standardError.write(Data("\n".utf8)) }
            fail(error)
        }
        // Protocol 2 sends no file digest (each chunk is authenticated): the report has one on protocol 1 only.
        let digest = report.sha256.isEmpty ? "" : "SHA-256 \(report.sha256), "
        emit("Moved \(report.vm) to \(to): \(report.bytes) bytes, \(digest)"
             + "\(report.performance) over \(report.channels) connection(s), authenticated as \(report.destinationPrincipal)"
             + (report.queuedAt.map { ", waited in queue at position \($0)" } ?? ""))
    }

    private func perform() async throws(MigrationServiceError) -> MigrationReport {
        let option = performance.flatMap(PerformanceOption.init(parsing:))
        let credential = try userCredential()
        let showProgress = isatty(STDERR_FILENO) != 0
        let progress: @Sendable (MigrationProgress) async -> Void = { p in
            guard showProgress else { return }
            let percent = p.totalBytes == 0 ? 100 : Int(min(100, Double(p.bytesSent) / Double(p.totalBytes) * 100))  // peer's figures: no trap
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
            // The source's own checks, as its service applies them to every move (P3; A4, A7 below).
            if let disabled = configuration.migrationDisabledError { throw disabled }
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
                authentication: consoleAuthentication(configuration, credential: credential),
                options: MoveOptions(performance: option ?? configuration.performanceOption,
                                     channels: channels ?? configuration.smbChannels, progress: progress)
                    .restricted(to: configuration.protection))
            if showProgress { FileHandle.standardError.write(Data("\n".utf8)) }
            return report
        }
        let client = try ManagementClient(localAddress: localAddress)
        let source = ManagementClient.Source(fqdn: sourceFQDN ?? "", endpoint: try ServiceEndpoint(parsing: via ?? ""),
                                             realm: realm)
        let method: MigrationAuthentication
        if signOn.lowercased() == "credssp" {
            method = .credSSP(try await passwordSignOn(realm: realm, destination: source.fqdn))
        } else {
            method = .kerberos(credential)
        }
        let request = (vm: vm, to: to, channels: channels ?? 0)
        let report = try await client.withSession(via: source, signOn: method) { session throws(MigrationServiceError) in
            try await session.requestMove(vm: request.vm, destination: request.to, endpoint: target, performance: option,
                                          channels: request.channels, progress: progress)
        }
        if showProgress { FileHandle.standardError.write(Data("\n".utf8)) }
        return report
    }

    /// A console sign-on at the source: with CredSSP the user's password (rule A1: without it the source has no
    /// credentials to pass on, 0x8009030E); with Kerberos the user's ccache.
    private func consoleAuthentication(_ configuration: HostConfiguration,
                                       credential: GSSCredential?) async throws(MigrationServiceError) -> MigrationAuthentication {
        guard configuration.authenticationType == .credSSP else { return .kerberos(credential) }
        guard passwordFile != nil else {
            throw MigrationServiceError.connection(.authentication, .noCredentials, destination: to,
                detail: "\(configuration.name) uses CredSSP: a console sign-on must give the user's password (--user, --password-file)")
        }
        let credentials = try await passwordSignOn(realm: configuration.realm, destination: to)
        if let refusal = configuration.credSSPRefusal(for: credentials.principal) {
            credentials.wipe()
            throw MigrationServiceError.connection(.authentication, .noCredentials, destination: to,
                detail: refusal)
        }
        return .credSSP(credentials)
    }

    /// Signs `--user` on with the password from `--password-file` (a wrong one: 0x8009030C).
    private func passwordSignOn(realm: String?, destination: String) async throws(MigrationServiceError) -> SignOnCredentials {
        let user = self.user ?? ""
        var name = user
        var userRealm = realm ?? ""
        if let at = user.lastIndex(of: "@") {
            name = String(user[..<at])
            userRealm = String(user[user.index(after: at)...])
        }
        guard !userRealm.isEmpty else {
            throw MigrationServiceError.configuration("Give the user as user@REALM or --realm", stage: .source)
        }
        return try await SignOnCredentials.signOn(user: name, realm: userRealm, password: try readPassword(),
                                                  destination: destination)
    }

    /// The first line of `--password-file` (`-`: standard input).
    private func readPassword() throws(MigrationServiceError) -> String {
        let path = passwordFile ?? "-"
        let data = path == "-" ? FileHandle.standardInput.readDataToEndOfFile() : FileManager.default.contents(atPath: path)
        guard let data, let line = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).first,
              !line.isEmpty else {
            throw MigrationServiceError.configuration("Cannot read a password from \(path)", stage: .source)
        }
        return String(line.hasSuffix("\r") ? line.dropLast() : line)
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
