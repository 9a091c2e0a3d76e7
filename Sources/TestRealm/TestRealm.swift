import Foundation
import Logging

/// A throwaway MIT Kerberos realm: its own temp directory, krb5.conf/kdc.conf, database and a
/// `krb5kdc` on 127.0.0.1 at a free port. Nothing reads or writes the system's Kerberos files:
/// every child program gets ``environment``.
///
/// ```swift
/// try await TestRealm.withRealm { realm in
///     try await realm.addPrincipal("alice", password: "secret")
///     let ccache = try await realm.kinit("alice", password: "secret")
///     …
/// }   // stopped and its directory removed, also when the body throws
/// ```
public actor TestRealm {
    /// Realm name, e.g. `MIGRATION.TEST`.
    public nonisolated let name: String
    /// TCP and UDP port of the KDC on 127.0.0.1 (kept across ``stopKDC()``/``startKDC()``).
    public nonisolated let kdcPort: UInt16
    /// The realm's temporary directory (removed by ``shutdown()``).
    public nonisolated let directory: String
    /// Path of the realm's krb5.conf (`KRB5_CONFIG`).
    public nonisolated let krb5ConfigPath: String
    /// Path of the realm's kdc.conf (`KRB5_KDC_PROFILE`).
    public nonisolated let kdcConfigPath: String
    /// `KRB5_CONFIG`, `KRB5_KDC_PROFILE`, `KRB5RCACHEDIR`, `KRB5CCNAME`, `KRB5_KTNAME` and
    /// `KRB5_CLIENT_KTNAME`, all pointing into ``directory``. Give it to every child process.
    public nonisolated let environment: [String: String]
    /// The configuration the realm was started with.
    public nonisolated let configuration: Configuration
    /// The refusing loopback port written into krb5.conf for each of ``Configuration/extraRealms``.
    public nonisolated let extraRealmPorts: [String: UInt16]
    /// `ldap://127.0.0.1:PORT/` of the private slapd (LDAP back end only).
    public nonisolated let ldapURI: String?
    /// URIs, root DN and password of the private slapd (LDAP back end only).
    public nonisolated let ldapConnection: LDAPConnection?

    /// Back end of this realm's KDC.
    public nonisolated var backend: KDCBackend { configuration.backend }

    nonisolated let files: RealmFiles
    nonisolated let runner: CommandRunner
    nonisolated let id: String
    private var ldapServer: LDAPServer?
    private var kdc: ChildProcess?
    private var heldSockets: [Int32]
    private var isShutDown = false
    private static let logger = Logger(label: "TestRealm")

    private init(configuration: Configuration, id: String, files: RealmFiles, runner: CommandRunner,
                 kdcPort: UInt16, kdc: ChildProcess, ldapServer: LDAPServer?,
                 extraRealmPorts: [String: UInt16], heldSockets: [Int32]) {
        self.name = configuration.name
        self.configuration = configuration
        self.id = id
        self.files = files
        self.runner = runner
        self.kdcPort = kdcPort
        self.kdc = kdc
        self.ldapServer = ldapServer
        self.ldapURI = ldapServer?.settings.uri
        self.ldapConnection = ldapServer.map {
            LDAPConnection(uri: $0.settings.uri, socketURI: $0.socketURI, rootDN: $0.settings.rootDN,
                           rootPassword: $0.settings.rootPassword, suffix: $0.settings.suffix,
                           kerberosContainerDN: $0.settings.containerDN)
        }
        self.extraRealmPorts = extraRealmPorts
        self.heldSockets = heldSockets
        self.directory = files.directory
        self.krb5ConfigPath = files.krb5Config
        self.kdcConfigPath = files.kdcConfig
        self.environment = files.environment
    }

    deinit {
        // Best effort if nobody called shutdown(): end our own daemons by PID, remove the directory.
        guard !isShutDown else { return }
        kdc?.send(SIGKILL)
        ldapServer?.process.send(SIGKILL)
        for fd in heldSockets { LoopbackPort.closeHeld(fd) }
        if !configuration.keepDirectory { try? FileManager.default.removeItem(atPath: files.directory) }
        CleanupRegistry.shared.unregister(realm: id)
    }

    // MARK: Life cycle

    /// Creates the directory, configuration and database, starts the KDC (and slapd for LDAP),
    /// and returns once the KDC answers. On failure everything started is stopped and removed.
    /// Starts a realm, runs `body` with it and shuts it down afterwards, also when `body` throws
    /// (a deferred `Task { await shutdown() }` may never run before the process exits).
    public static func withRealm<R: Sendable>(_ configuration: Configuration = .init(),
                                              isolation: isolated (any Actor)? = #isolation,
                                              _ body: (TestRealm) async throws -> R) async throws -> R {
        let realm = try await start(configuration)
        do {
            let result = try await body(realm)
            await realm.shutdown()
            return result
        } catch {
            await realm.shutdown()
            throw error
        }
    }

    public static func start(_ configuration: Configuration = .init()) async throws -> TestRealm {
        try configuration.validate()
        let id = UUID().uuidString
        let parent = configuration.parentDirectory ?? NSTemporaryDirectory()
        let path = (parent as NSString).appendingPathComponent(
            "testrealm-\(configuration.name.lowercased())-\(id.prefix(8).lowercased())")
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw TestRealmError.fileSystem(path: path, reason: "\(error)")
        }
        let files = RealmFiles(directory: path)
        if !configuration.keepDirectory { CleanupRegistry.shared.register(realm: id, directory: path, pid: nil) }
        let runner = CommandRunner(realmEnvironment: files.environment, scratchDirectory: files.scratchDirectory,
                                   traceFile: configuration.trace ? files.traceLog : nil)
        var heldSockets: [Int32] = []
        var ldapServer: LDAPServer?
        var kdc: ChildProcess?
        do {
            // Who made it: a later process removes it if this one is killed before removing it.
            if !configuration.keepDirectory { try RealmDirectoryOwner.current()?.write(into: path) }
            try files.createDirectories()
            try write("*/admin@\(configuration.name) *\n", to: files.aclFile)
            var extraRealmPorts: [String: UInt16] = [:]
            for extra in configuration.extraRealms {
                let held = try LoopbackPort.holdClosed()
                heldSockets.append(held.fd)
                extraRealmPorts[extra] = held.port
            }
            let masterPassword = UUID().uuidString
            if configuration.backend == .ldap {
                let server = try await LDAPServer.start(
                    files: files, runner: runner, realmID: id, timeout: configuration.startTimeout,
                    replication: configuration.replicated ? LDAPServer.Replication(serverID: 1) : nil)
                ldapServer = server
            }
            var port = try LoopbackPort.free()
            try writeProfiles(files, configuration, port: port, extraRealmPorts: extraRealmPorts,
                              ldap: ldapServer?.settings)
            try await createDatabase(files: files, runner: runner, configuration: configuration,
                                     masterPassword: masterPassword, ldap: ldapServer?.settings)
            var attempt = 0
            while true {
                attempt += 1
                do {
                    kdc = try await launchKDC(files: files, runner: runner, realm: configuration.name,
                                              port: port, timeout: configuration.startTimeout, realmID: id)
                    break
                } catch let error as TestRealmError {
                    // Another process may have taken the port between our probe and krb5kdc's bind.
                    guard attempt < 4, case .kdcDidNotStart(_, _, let tail) = error,
                          tail.contains("Address already in use") else { throw error }
                    port = try LoopbackPort.free()
                    try writeProfiles(files, configuration, port: port, extraRealmPorts: extraRealmPorts,
                                      ldap: ldapServer?.settings)
                }
            }
            guard let kdc else { throw TestRealmError.kdcDidNotStart(port: port, reason: "not launched", logTail: "") }
            logger.debug("realm \(configuration.name) up on 127.0.0.1:\(port) in \(path)")
            return TestRealm(configuration: configuration, id: id, files: files, runner: runner, kdcPort: port,
                             kdc: kdc, ldapServer: ldapServer, extraRealmPorts: extraRealmPorts,
                             heldSockets: heldSockets)
        } catch {
            await kdc?.stop()
            await ldapServer?.stop()
            for fd in heldSockets { LoopbackPort.closeHeld(fd) }
            if !configuration.keepDirectory { try? FileManager.default.removeItem(atPath: path) }
            CleanupRegistry.shared.unregister(realm: id)
            throw error
        }
    }

    /// Stops the KDC (by its own PID) and slapd, closes held ports and removes ``directory``.
    /// Idempotent.
    public func shutdown() async {
        guard !isShutDown else { return }
        isShutDown = true
        await kdc?.stop()
        kdc = nil
        await ldapServer?.stop()
        for fd in heldSockets { LoopbackPort.closeHeld(fd) }
        heldSockets = []
        if !configuration.keepDirectory { try? FileManager.default.removeItem(atPath: files.directory) }
        CleanupRegistry.shared.unregister(realm: id)
    }

    /// Stops only the KDC (SIGTERM to its PID, SIGKILL after 5 s). Clients then see "KDC unreachable".
    public func stopKDC() async {
        guard let kdc else { return }
        self.kdc = nil
        await kdc.stop()
        CleanupRegistry.shared.unregister(realm: id, pid: kdc.pid)
    }

    /// Kills the realm's slapd (LDAP back end) with SIGKILL and waits until it is gone: the KDC keeps running
    /// and answers from a directory it can no longer read. No-op for DB2 or once the realm is shut down.
    public func killDirectory() async {
        guard !isShutDown, let process = ldapServer?.process else { return }
        process.send(SIGKILL)
        _ = await process.wait()
        CleanupRegistry.shared.unregister(realm: id, pid: process.pid)
    }

    /// Starts the KDC again on the same port (after ``stopKDC()``); no-op if it is running.
    public func startKDC() async throws {
        guard !isShutDown else { throw TestRealmError.realmShutDown(name: name) }
        if let kdc, kdc.exitState == nil { return }
        kdc = try await Self.launchKDC(files: files, runner: runner, realm: name, port: kdcPort,
                                       timeout: configuration.startTimeout, realmID: id)
    }

    /// PID of the running `krb5kdc`, or nil when stopped.
    public var kdcPID: Int32? {
        guard let kdc, kdc.exitState == nil else { return nil }
        return kdc.pid
    }

    /// PID of the private `slapd` (LDAP back end), or nil.
    public var ldapServerPID: Int32? {
        guard let ldapServer, ldapServer.process.exitState == nil else { return nil }
        return ldapServer.process.pid
    }

    /// The last lines of the KDC log (useful in assertion messages).
    public nonisolated func kdcLogTail(lines: Int = 30) -> String {
        CommandRunner.tail(files.kdcLog, lines: lines)
    }

    // MARK: Principals

    /// `principal` with `@REALM` appended if it has no realm.
    public nonisolated func qualified(_ principal: String) -> String {
        principal.contains("@") ? principal : principal + "@" + name
    }

    /// Creates a principal with `password`, or a random key when `password` is nil.
    public func addPrincipal(_ principal: String, password: String? = nil,
                             attributes: PrincipalAttributes = .none) async throws {
        let target = qualified(principal)
        if let password {
            try await kadmin(["addprinc"] + attributes.kadminOptions + [target],
                             input: password + "\n" + password + "\n")
        } else {
            try await kadmin(["addprinc", "-randkey"] + attributes.kadminOptions + [target])
        }
    }

    /// Changes flags and lifetimes of an existing principal (`modprinc`); nil fields stay as they are.
    public func modifyPrincipal(_ principal: String, attributes: PrincipalAttributes) async throws {
        let options = attributes.kadminOptions
        guard !options.isEmpty else { return }
        try await kadmin(["modprinc"] + options + [qualified(principal)])
    }

    /// Same as ``modifyPrincipal(_:attributes:)``.
    public func setAttributes(_ attributes: PrincipalAttributes, for principal: String) async throws {
        try await modifyPrincipal(principal, attributes: attributes)
    }

    /// Sets a new password, or a new random key when `password` is nil (existing keytabs go stale).
    public func setPassword(_ principal: String, password: String?) async throws {
        if let password {
            try await kadmin(["cpw", qualified(principal)], input: password + "\n" + password + "\n")
        } else {
            try await kadmin(["cpw", "-randkey", qualified(principal)])
        }
    }

    /// Deletes a principal.
    public func deletePrincipal(_ principal: String) async throws {
        try await kadmin(["delprinc", "-force", qualified(principal)])
    }

    /// `getprinc` output (flags appear on its `Attributes:` line).
    public func principalInfo(_ principal: String) async throws -> String {
        try await kadmin(["getprinc", qualified(principal)]).standardOutput
    }

    /// Writes the current keys of `principals` (keys are not changed) to a keytab and returns its
    /// path; by default a new file under `keytabs/` in the realm directory.
    public func exportKeytab(_ principals: [String], to path: String? = nil) async throws -> String {
        guard let first = principals.first else { throw TestRealmError.invalidArgument("no principals to export") }
        let keytab = path ?? (files.keytabDirectory + "/" + Self.fileSafe(first) + "-"
                              + UUID().uuidString.prefix(8) + ".keytab")
        try await kadmin(["ktadd", "-k", keytab, "-norandkey"] + principals.map(qualified))
        return keytab
    }

    // MARK: Tickets

    /// A new, unused `FILE:` credential cache name inside the realm directory.
    public nonisolated func newCCacheName() -> String {
        "FILE:" + files.ccacheDirectory + "/cc-" + UUID().uuidString
    }

    /// Gets a TGT with a password (`kinit`); returns the ccache name (`FILE:…`), by default a new one.
    /// A wrong password throws ``TestRealmError/commandFailed(_:)`` with kinit's message.
    public func kinit(_ principal: String, password: String, ccache: String? = nil,
                      forwardable: Bool = true, lifetime: Duration? = nil,
                      renewableLifetime: Duration? = nil) async throws -> String {
        let cache = ccache ?? newCCacheName()
        try await retryingUnknownClient {
            try await runner.run("/usr/bin/kinit",
                                 Self.kinitOptions(cache, forwardable, lifetime, renewableLifetime) + [qualified(principal)],
                                 input: password + "\n", secrets: [password])
        }
        return cache
    }

    /// Runs a kinit; if the KDC answers that the client is not in its database, waits 1.1 s and tries once more.
    /// Seen once in a full parallel test run on two cores (DB2 back end, twelve concurrent `kadmin.local`
    /// `addprinc`s then kinits): the KDC did not yet see a principal that `kadmin.local` had just created. A
    /// principal that really does not exist still fails, with kinit's own message, 1.1 s later.
    private func retryingUnknownClient(_ body: () async throws -> CommandResult) async throws {
        do {
            _ = try await body()
        } catch TestRealmError.commandFailed(let result)
                    where result.standardError.contains("not found in Kerberos database") {
            try await Task.sleep(for: .milliseconds(1100))
            _ = try await body()
        }
    }

    /// Gets a TGT from a keytab (`kinit -k -t`); returns the ccache name, by default a new one.
    public func kinit(_ principal: String, keytab: String, ccache: String? = nil,
                      forwardable: Bool = true, lifetime: Duration? = nil,
                      renewableLifetime: Duration? = nil) async throws -> String {
        let cache = ccache ?? newCCacheName()
        try await retryingUnknownClient {
            try await runner.run("/usr/bin/kinit",
                                 Self.kinitOptions(cache, forwardable, lifetime, renewableLifetime)
                                    + ["-k", "-t", keytab, qualified(principal)])
        }
        return cache
    }

    /// `kvno` for `services` with the TGT in `ccache`. With `impersonating`, uses S4U2Self for that
    /// user (`-U`; needs the service's `keytab` for `-k`), and with `constrainedDelegation` also
    /// S4U2Proxy to the services (`-P`). Throws on a non-zero exit (kvno prints "kvno = N" even then).
    @discardableResult
    public func kvno(_ services: [String], ccache: String, impersonating user: String? = nil,
                     keytab: String? = nil, constrainedDelegation: Bool = false) async throws -> CommandResult {
        var arguments = ["-c", ccache]
        if let keytab { arguments += ["-k", keytab] }
        if let user { arguments += ["-U", user] }
        if constrainedDelegation { arguments.append("-P") }
        arguments += services
        return try await runner.run("/usr/bin/kvno", arguments)
    }

    /// The tickets in `ccache` (`klist -f`).
    public func tickets(ccache: String) async throws -> [Ticket] {
        let output = try await runner.run("/usr/bin/klist", ["-f", "-c", ccache]).standardOutput
        return Ticket.parse(klist: output)
    }

    /// Flag letters (`klist -f`, e.g. `"FRIA"`) of the ticket in `ccache` for `server`
    /// (default: the realm's krbtgt).
    public func ticketFlags(ccache: String, server: String? = nil) async throws -> String {
        let wanted = qualified(server ?? "krbtgt/\(name)")
        guard let ticket = try await tickets(ccache: ccache).first(where: { $0.server == wanted }) else {
            throw TestRealmError.invalidArgument("no ticket for \(wanted) in \(ccache)")
        }
        return ticket.flags
    }

    /// Runs any program (absolute path, argv entries, no shell) with the realm's environment.
    /// Throws ``TestRealmError/commandFailed(_:)`` on failure when `check` is true.
    @discardableResult
    public nonisolated func run(_ executable: String, _ arguments: [String], input: String? = nil,
                                check: Bool = true) async throws -> CommandResult {
        try await runner.run(executable, arguments, input: input, check: check)
    }

    /// Starts a long-running program (a test server such as `gss-server`) with the realm's
    /// environment, stdout and stderr to `outputPath` (default: a new `.out` file in ``directory``).
    /// It reacts to SIGTERM, and with `dieWithParent` (`setpriv --pdeathsig KILL`) it is killed if
    /// this process dies. The caller owns it: end it with ``ChildProcess/stop(grace:)``.
    /// `extraEnvironment` replaces or adds variables (e.g. `KRB5_CONFIG` of a trust configuration).
    public nonisolated func launch(_ executable: String, _ arguments: [String], outputPath: String? = nil,
                                   dieWithParent: Bool = true, extraEnvironment: [String: String] = [:]) async throws -> ChildProcess {
        let output = outputPath ?? (files.directory + "/" + Self.fileSafe((executable as NSString).lastPathComponent)
                                    + "-" + UUID().uuidString.prefix(8) + ".out")
        let (path, argv) = dieWithParent ? ChildProcess.dyingWithParent(executable, arguments)
                                         : (executable, arguments)
        return try await ChildProcess(executable: path, arguments: argv,
                                environment: runner.environment.merging(extraEnvironment) { $1 },
                                standardOutputPath: output, standardErrorPath: output)
    }

    // MARK: LDAP delegation

    /// Sets the services `service` may delegate to (S4U2Proxy), as `krbAllowedToDelegateTo` values
    /// on its LDAP entry. Values are principals (realm optional, case-sensitive, spaces literal);
    /// an empty list removes the attribute. Takes effect at once. LDAP back end only.
    public func setAllowedToDelegate(_ service: String, targets: [String]) async throws {
        guard let ldapServer else {
            throw TestRealmError.unsupportedByBackend(operation: "setAllowedToDelegate", backend: backend)
        }
        try await ldapServer.setAllowedToDelegate(principal: qualified(service), realm: name, targets: targets)
    }

    /// The `krbAllowedToDelegateTo` values of `service`. LDAP back end only.
    public func allowedToDelegate(_ service: String) async throws -> [String] {
        guard let ldapServer else {
            throw TestRealmError.unsupportedByBackend(operation: "allowedToDelegate", backend: backend)
        }
        return try await ldapServer.allowedToDelegate(principal: qualified(service), realm: name)
    }

    // MARK: Replication

    /// The realm's own slapd (LDAP back end), for replicas and replication.
    var directoryServer: LDAPServer? { ldapServer }

    /// Pulls every change `provider` holds into this realm's slapd with OpenLDAP syncrepl (a
    /// `refreshOnly` refresh: slapd restarted on its address and port as a consumer of `provider`)
    /// and returns once this directory has caught up (contextCSN). The KDC keeps running; it
    /// reconnects to slapd on its next request. Needs ``Configuration/replicated``.
    public func pullDirectory(from provider: RealmReplica) async throws {
        guard let server = ldapServer else {
            throw TestRealmError.unsupportedByBackend(operation: "pullDirectory", backend: backend)
        }
        let source = try await provider.directorySettings()
        ldapServer = try await server.restarted(pullingFrom: source, providerID: provider.serverID)
        try await ldapServer?.waitUntilCaughtUp(with: source, timeout: configuration.startTimeout)
    }

    // MARK: Internals

    /// Runs one `kadmin.local -q` query. Every word is quoted for kadmin's parser (`"…"`, with
    /// `"` doubled), so spaces in principal names survive. kadmin.local exits 0 even when the
    /// query fails, so its stderr decides.
    @discardableResult
    private func kadmin(_ words: [String], input: String? = nil) async throws -> CommandResult {
        guard !isShutDown else { throw TestRealmError.realmShutDown(name: name) }
        return try await Self.kadmin(runner: runner, realm: name, words, input: input)
    }

    /// One `kadmin.local -q` query with `runner`'s environment (a realm's or a replica's database).
    @discardableResult
    static func kadmin(runner: CommandRunner, realm: String, _ words: [String], input: String? = nil) async throws -> CommandResult {
        let query = words.map(Self.kadminQuoted).joined(separator: " ")
        let result = try await runner.run("/usr/sbin/kadmin.local", ["-r", realm, "-q", query], input: input)
        let problems = result.standardError.split(separator: "\n").filter { line in
            let text = line.trimmingCharacters(in: .whitespaces)
            return !text.isEmpty && !text.hasPrefix("No policy specified for")
                && !text.hasPrefix("WARNING: no policy specified")
                && !text.hasPrefix("Authenticating as principal")
        }
        if !problems.isEmpty {
            var failed = result
            if failed.exitStatus == 0 { failed.exitStatus = 1 }
            throw TestRealmError.commandFailed(failed)
        }
        return result
    }

    static func kadminQuoted(_ word: String) -> String {
        "\"" + word.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    static func fileSafe(_ text: String) -> String {
        String(text.unicodeScalars.map { CharacterSet.alphanumerics.contains($0) || $0 == "." || $0 == "-" ? Character($0) : "_" })
    }

    private static func kinitOptions(_ cache: String, _ forwardable: Bool, _ lifetime: Duration?,
                                     _ renewable: Duration?) -> [String] {
        var options = ["-c", cache, forwardable ? "-f" : "-F"]
        if let lifetime { options += ["-l", PrincipalAttributes.deltat(lifetime)] }
        if let renewable { options += ["-r", PrincipalAttributes.deltat(renewable)] }
        return options
    }

    private static func write(_ text: String, to path: String) throws {
        do {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw TestRealmError.fileSystem(path: path, reason: "\(error)")
        }
    }

    private static func writeProfiles(_ files: RealmFiles, _ configuration: Configuration, port: UInt16,
                                      extraRealmPorts: [String: UInt16], ldap: LDAPSettings?) throws {
        try write(files.krb5ConfText(configuration, kdcPort: port, extraRealmPorts: extraRealmPorts, ldap: ldap),
                  to: files.krb5Config)
        try write(files.kdcConfText(configuration, kdcPort: port, ldap: ldap), to: files.kdcConfig)
    }

    private static func createDatabase(files: RealmFiles, runner: CommandRunner, configuration: Configuration,
                                       masterPassword: String, ldap: LDAPSettings?) async throws {
        if let ldap {
            try await runner.run("/usr/sbin/kdb5_ldap_util",
                                 ["-D", ldap.rootDN, "-w", ldap.rootPassword, "-H", ldap.uri,
                                  "create", "-s", "-P", masterPassword, "-r", configuration.name,
                                  "-subtrees", ldap.suffix, "-sscope", "sub"],
                                 secrets: [masterPassword, ldap.rootPassword])
            try await runner.run("/usr/sbin/kdb5_ldap_util",
                                 ["-D", ldap.rootDN, "-w", ldap.rootPassword, "-H", ldap.uri,
                                  "stashsrvpw", "-f", files.ldapServicePasswordFile, ldap.rootDN],
                                 input: ldap.rootPassword + "\n" + ldap.rootPassword + "\n",
                                 secrets: [ldap.rootPassword])
        } else {
            try await runner.run("/usr/sbin/kdb5_util",
                                 ["create", "-s", "-P", masterPassword, "-r", configuration.name],
                                 secrets: [masterPassword])
        }
    }

    /// Starts `krb5kdc -n` (foreground, so the PID is the daemon's) and waits until its log says
    /// it started and its TCP port answers.
    static func launchKDC(files: RealmFiles, runner: CommandRunner, realm: String, port: UInt16,
                          timeout: Duration, realmID: String, host: String = "127.0.0.1") async throws -> ChildProcess {
        let logStart = CommandRunner.read(files.kdcLog).utf8.count
        let (executable, arguments) = ChildProcess.dyingWithParent(
            "/usr/sbin/krb5kdc", ["-n", "-r", realm, "-P", files.kdcPIDFile])
        let child = try await ChildProcess(
            executable: executable, arguments: arguments,
            environment: runner.environment, standardOutputPath: files.kdcOutput,
            standardErrorPath: files.kdcOutput + ".err")
        CleanupRegistry.shared.register(realm: realmID, directory: nil, pid: child.pid)
        let deadline = ContinuousClock.now + timeout
        func tail() -> String {
            [CommandRunner.tail(files.kdcLog), CommandRunner.tail(files.kdcOutput),
             CommandRunner.tail(files.kdcOutput + ".err")].filter { !$0.isEmpty }.joined(separator: "\n")
        }
        while true {
            if let exit = child.exitState {
                CleanupRegistry.shared.unregister(realm: realmID, pid: child.pid)
                throw TestRealmError.kdcDidNotStart(
                    port: port, reason: "krb5kdc exited with \(exit.signaled ? "signal" : "status") \(exit.status)",
                    logTail: tail())
            }
            let log = CommandRunner.read(files.kdcLog).utf8.dropFirst(logStart)
            if String(decoding: log, as: UTF8.self).contains("commencing operation"),
               LoopbackPort.acceptsConnections(port, host: host) {
                return child
            }
            if ContinuousClock.now >= deadline {
                await child.stop()
                CleanupRegistry.shared.unregister(realm: realmID, pid: child.pid)
                throw TestRealmError.kdcDidNotStart(port: port, reason: "not ready after \(timeout)", logTail: tail())
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}
