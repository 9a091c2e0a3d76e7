import Foundation

/// Another domain controller of a ``TestRealm``: its own OpenLDAP `slapd` holding a syncrepl
/// replica of the realm's directory, and its own MIT `krb5kdc` on the LDAP back end reading only
/// that slapd, both on the replica's own loopback address (127.0.0.x).
///
/// Replication is real (OpenLDAP syncrepl, multi-provider: both sides stay writable) and happens
/// only when asked: ``pull(from:)`` refreshes this replica from the realm (or another replica),
/// ``TestRealm/pullDirectory(from:)`` the other way. Until then each KDC answers from its own
/// directory — MIT's LDAP KDB keeps no entry cache — so a change written on one side is not seen by
/// the other side's KDC. The realm needs ``TestRealm/Configuration/replicated``.
public actor RealmReplica {
    /// A name for logs and directories (`DC02`).
    public nonisolated let name: String
    /// Loopback address of its KDC and slapd.
    public nonisolated let address: String
    /// TCP and UDP port of its KDC on ``address``.
    public nonisolated let kdcPort: UInt16
    /// Its directory (inside the realm's).
    public nonisolated let directory: String
    /// Its krb5.conf: the realm's KDC is this replica's (`kdc = address:port`), the database its slapd.
    public nonisolated let krb5ConfigPath: String
    /// `KRB5_CONFIG`, `KRB5_KDC_PROFILE`, … for programs that must use this domain controller.
    public nonisolated let environment: [String: String]
    /// Its slapd's URIs and credentials (the realm's root DN and password).
    public nonisolated let ldapConnection: LDAPConnection
    /// Its slapd's `serverID` (2, 3, …; the realm's own slapd is 1).
    public nonisolated let serverID: Int
    /// Realm name.
    public nonisolated let realmName: String

    nonisolated let files: RealmFiles
    nonisolated let runner: CommandRunner
    private let realmID: String
    private let timeout: Duration
    private var ldapServer: LDAPServer
    private var kdc: ChildProcess?
    private var isShutDown = false

    private init(name: String, address: String, kdcPort: UInt16, files: RealmFiles, runner: CommandRunner,
                 serverID: Int, realmName: String, realmID: String, timeout: Duration, ldapServer: LDAPServer,
                 kdc: ChildProcess) {
        self.name = name
        self.address = address
        self.kdcPort = kdcPort
        self.files = files
        self.runner = runner
        self.directory = files.directory
        self.krb5ConfigPath = files.krb5Config
        self.environment = files.environment
        self.serverID = serverID
        self.realmName = realmName
        self.realmID = realmID
        self.timeout = timeout
        self.ldapServer = ldapServer
        self.kdc = kdc
        let s = ldapServer.settings
        self.ldapConnection = LDAPConnection(uri: s.uri, socketURI: ldapServer.socketURI, rootDN: s.rootDN,
                                             rootPassword: s.rootPassword, suffix: s.suffix,
                                             kerberosContainerDN: s.containerDN)
    }

    /// Starts a domain controller of `realm` on `address` (a 127.0.0.0/8 address): its slapd pulls
    /// the realm's whole directory (syncrepl) before its KDC starts. `serverID` must be unique in
    /// the realm and not 1 (2…4095).
    public static func start(of realm: TestRealm, name: String, address: String, serverID: Int) async throws -> RealmReplica {
        guard realm.configuration.replicated, let primary = await realm.directoryServer else {
            throw TestRealmError.invalidArgument("a replica needs an LDAP realm started with `replicated: true`")
        }
        guard (2...4095).contains(serverID) else { throw TestRealmError.invalidArgument("serverID \(serverID) (2…4095)") }
        guard address.hasPrefix("127."), address.split(separator: ".").count == 4 else {
            throw TestRealmError.invalidArgument("replica address \(address) (use 127.0.0.0/8)")
        }
        let files = RealmFiles(directory: realm.directory + "/dc-" + TestRealm.fileSafe(name).lowercased())
        try files.createDirectories()
        let runner = CommandRunner(realmEnvironment: files.environment, scratchDirectory: files.scratchDirectory,
                                   traceFile: realm.configuration.trace ? files.traceLog : nil)
        let server = try await LDAPServer.start(
            files: files, runner: runner, realmID: realm.id, timeout: realm.configuration.startTimeout, host: address,
            credentials: (primary.settings.rootDN, primary.settings.rootPassword),
            replication: .init(serverID: serverID, provider: primary.settings, providerID: 1), seed: false)
        var kdc: ChildProcess?
        do {
            try await server.waitUntilCaughtUp(with: primary.settings, timeout: realm.configuration.startTimeout)
            // Same master key and service password as the realm (one database, replicated).
            for (from, to) in [(realm.files.stash, files.stash), (realm.files.ldapServicePasswordFile, files.ldapServicePasswordFile),
                               (realm.files.aclFile, files.aclFile)] {
                do { try FileManager.default.copyItem(atPath: from, toPath: to) } catch {
                    throw TestRealmError.fileSystem(path: to, reason: "\(error)")
                }
            }
            var attempt = 0
            while true {
                attempt += 1
                let port = try LoopbackPort.free(on: address)
                try write(files.krb5ConfText(realm.configuration, kdcPort: port, extraRealmPorts: realm.extraRealmPorts,
                                             ldap: server.settings, kdcHost: address), to: files.krb5Config)
                try write(files.kdcConfText(realm.configuration, kdcPort: port, ldap: server.settings, kdcHost: address),
                          to: files.kdcConfig)
                do {
                    let child = try await TestRealm.launchKDC(files: files, runner: runner, realm: realm.name, port: port,
                                                              timeout: realm.configuration.startTimeout,
                                                              realmID: realm.id, host: address)
                    kdc = child
                    return RealmReplica(name: name, address: address, kdcPort: port, files: files, runner: runner,
                                        serverID: serverID, realmName: realm.name, realmID: realm.id,
                                        timeout: realm.configuration.startTimeout, ldapServer: server, kdc: child)
                } catch let error as TestRealmError {
                    guard attempt < 4, case .kdcDidNotStart(_, _, let tail) = error,
                          tail.contains("Address already in use") else { throw error }
                }
            }
        } catch {
            await kdc?.stop()
            await server.stop()
            throw error
        }
    }

    /// Pulls every change the realm's own directory holds into this replica (syncrepl refresh;
    /// see the type's documentation) and returns once it has caught up.
    public func pull(from realm: TestRealm) async throws {
        guard let primary = await realm.directoryServer else {
            throw TestRealmError.unsupportedByBackend(operation: "pull", backend: realm.backend)
        }
        try await pull(primary.settings, providerID: 1)
    }

    /// Pulls every change another replica holds into this one.
    public func pull(from other: RealmReplica) async throws {
        try await pull(try await other.directorySettings(), providerID: other.serverID)
    }

    func directorySettings() throws -> LDAPSettings {
        guard !isShutDown else { throw TestRealmError.realmShutDown(name: realmName) }
        return ldapServer.settings
    }

    private func pull(_ provider: LDAPSettings, providerID: Int) async throws {
        guard !isShutDown else { throw TestRealmError.realmShutDown(name: realmName) }
        ldapServer = try await ldapServer.restarted(pullingFrom: provider, providerID: providerID)
        try await ldapServer.waitUntilCaughtUp(with: provider, timeout: timeout)
    }

    /// Replaces `krbAllowedToDelegateTo` of `service` on this replica's slapd only.
    public func setAllowedToDelegate(_ service: String, targets: [String]) async throws {
        try await ldapServer.setAllowedToDelegate(principal: qualified(service), realm: realmName, targets: targets)
    }

    /// `krbAllowedToDelegateTo` of `service` as this replica's slapd holds it.
    public func allowedToDelegate(_ service: String) async throws -> [String] {
        try await ldapServer.allowedToDelegate(principal: qualified(service), realm: realmName)
    }

    /// Changes flags of an existing principal on this replica's directory only (`kadmin.local modprinc`
    /// against its slapd).
    public func modifyPrincipal(_ principal: String, attributes: PrincipalAttributes) async throws {
        guard !isShutDown else { throw TestRealmError.realmShutDown(name: realmName) }
        let options = attributes.kadminOptions
        guard !options.isEmpty else { return }
        try await TestRealm.kadmin(runner: runner, realm: realmName, ["modprinc"] + options + [qualified(principal)])
    }

    /// Runs a program with this domain controller's environment (its KDC, its krb5.conf).
    @discardableResult
    public nonisolated func run(_ executable: String, _ arguments: [String], input: String? = nil,
                                check: Bool = true) async throws -> CommandResult {
        try await runner.run(executable, arguments, input: input, check: check)
    }

    /// The last lines of this KDC's log.
    public nonisolated func kdcLogTail(lines: Int = 30) -> String { CommandRunner.tail(files.kdcLog, lines: lines) }

    /// PID of its running `krb5kdc`, or nil.
    public var kdcPID: Int32? { kdc?.exitState == nil ? kdc?.pid : nil }

    /// Stops its KDC and slapd (by their PIDs). Idempotent; the realm's shutdown removes its directory.
    public func shutdown() async {
        guard !isShutDown else { return }
        isShutDown = true
        await kdc?.stop()
        kdc = nil
        await ldapServer.stop()
    }

    nonisolated func qualified(_ principal: String) -> String {
        principal.contains("@") ? principal : principal + "@" + realmName
    }

    private static func write(_ text: String, to path: String) throws {
        do { try text.write(toFile: path, atomically: true, encoding: .utf8) } catch {
            throw TestRealmError.fileSystem(path: path, reason: "\(error)")
        }
    }
}
