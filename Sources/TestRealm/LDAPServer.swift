import Foundation
import LDIFFormat

/// The private OpenLDAP `slapd` behind an LDAP-backed realm: Kerberos schema, back_mdb, suffix
/// `dc=testrealm`, listening on `ldap://127.0.0.1:PORT/` and an ldapi socket in the realm directory.
final class LDAPServer: Sendable {
    let process: ChildProcess
    let settings: LDAPSettings
    /// `ldapi://` URL of the Unix socket (used for our own ldapmodify/ldapsearch).
    let socketURI: String
    private let passwordFile: String
    private let runner: CommandRunner
    /// What `restarted(pullingFrom:providerID:)` needs to start it again.
    private let start: (files: RealmFiles, realmID: String, timeout: Duration, host: String, serverID: Int?)

    private init(process: ChildProcess, settings: LDAPSettings, socketURI: String, passwordFile: String,
                 runner: CommandRunner, start: (files: RealmFiles, realmID: String, timeout: Duration, host: String, serverID: Int?)) {
        self.process = process
        self.settings = settings
        self.socketURI = socketURI
        self.passwordFile = passwordFile
        self.runner = runner
        self.start = start
    }

    static let suffix = "dc=testrealm"

    /// How a slapd takes part in replication (several domain controllers of one realm).
    struct Replication: Sendable {
        /// `serverID` (1…4095), unique per directory server of the realm.
        var serverID: Int
        /// The server to pull from at start (syncrepl `refreshOnly`, one refresh, then idle), or nil.
        var provider: LDAPSettings?
        /// `serverID` of `provider` (the syncrepl `rid`, so its cookie is kept per provider).
        var providerID: Int = 0
    }

    /// Writes the schema and slapd.conf, starts `slapd -d 256` in the foreground (so the PID is the
    /// daemon's), waits for its port and adds the suffix entry.
    ///
    /// With `replication`, slapd also loads `syncprov` (so others can pull from it) and, when it
    /// names a provider, pulls from it with syncrepl (`refreshOnly`, multi-provider so it stays
    /// writable); a server started that way with `seed: false` gets its content from the provider.
    static func start(files: RealmFiles, runner: CommandRunner, realmID: String,
                      timeout: Duration, host: String = "127.0.0.1", port fixedPort: UInt16? = nil,
                      credentials: (rootDN: String, password: String)? = nil,
                      replication: Replication? = nil, seed: Bool = true) async throws -> LDAPServer {
        let base = files.ldapDirectory
        let database = base + "/db"
        do {
            try FileManager.default.createDirectory(atPath: database, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw TestRealmError.fileSystem(path: database, reason: "\(error)")
        }
        if !FileManager.default.fileExists(atPath: base + "/kerberos.schema") {
            let schema = try await runner.run("/usr/bin/gzip", ["-dc", "/usr/share/doc/krb5-kdc-ldap/kerberos.schema.gz"])
            try write(schema.standardOutput, to: base + "/kerberos.schema")
        }
        let rootDN = credentials?.rootDN ?? "cn=admin," + suffix
        let rootPassword = credentials?.password ?? UUID().uuidString
        let passwordFile = base + "/rootpw"
        try write(rootPassword, to: passwordFile)
        try write(configText(base: base, database: database, rootDN: rootDN, rootPassword: rootPassword,
                             replication: replication), to: base + "/slapd.conf")
        let socketPath = base + "/ldapi"
        guard socketPath.utf8.count < 100 else {
            throw TestRealmError.invalidArgument("LDAP socket path too long (\(socketPath.utf8.count) bytes, max 99): "
                                                 + "use a shorter parentDirectory or realm name")
        }
        let socketURI = "ldapi://" + (socketPath.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? socketPath)
        let output = base + "/slapd.out"

        var attempt = 0
        while true {
            attempt += 1
            let port = try fixedPort ?? LoopbackPort.free(on: host)
            let uri = "ldap://\(host):\(port)/"
            let (executable, arguments) = ChildProcess.dyingWithParent(
                "/usr/sbin/slapd", ["-f", base + "/slapd.conf", "-h", uri + " " + socketURI, "-d", "256"])
            let child = try await ChildProcess(
                executable: executable, arguments: arguments,
                environment: runner.environment, standardOutputPath: output + ".stdout", standardErrorPath: output)
            CleanupRegistry.shared.register(realm: realmID, directory: nil, pid: child.pid)
            let failure = await waitUntilReady(child, port: port, host: host, socketPath: socketPath, timeout: timeout,
                                               output: output)
            if let failure {
                CleanupRegistry.shared.unregister(realm: realmID, pid: child.pid)
                if attempt < 4, case .ldapServerDidNotStart(_, _, let tail) = failure,
                   tail.contains("Address already in use") || tail.contains("errno=98") {
                    // A restart on the same port may find the old socket still closing.
                    if fixedPort != nil { try? await Task.sleep(for: .milliseconds(200)) }
                    continue
                }
                throw failure
            }
            let server = LDAPServer(
                process: child,
                settings: LDAPSettings(uri: uri, suffix: suffix, rootDN: rootDN, rootPassword: rootPassword),
                socketURI: socketURI, passwordFile: passwordFile, runner: runner,
                start: (files, realmID, timeout, host, replication?.serverID))
            if seed { try await server.addSuffix() }
            return server
        }
    }

    /// Waits until `child` (slapd on `port`) accepts on both its TCP port and its ldapi socket; nil when it does,
    /// otherwise why not (it exited, or it was not ready after `timeout` and was stopped).
    private static func waitUntilReady(_ child: ChildProcess, port: UInt16, host: String, socketPath: String,
                                       timeout: Duration, output: String) async -> TestRealmError? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let exit = child.exitState {
                return .ldapServerDidNotStart(
                    port: port, reason: "slapd exited with \(exit.signaled ? "signal" : "status") \(exit.status)",
                    logTail: CommandRunner.tail(output))
            }
            // Both listeners: slapd binds the TCP one first, and our own tools use the ldapi socket.
            if LoopbackPort.acceptsConnections(port, host: host), LoopbackPort.acceptsConnections(unixSocket: socketPath) { return nil }
            if ContinuousClock.now >= deadline {
                await child.stop()
                return .ldapServerDidNotStart(port: port, reason: "not ready after \(timeout)",
                                          logTail: CommandRunner.tail(output))
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Adds the suffix entry (a new, empty database); stops the server when that fails.
    private func addSuffix() async throws {
        do {
            try await ldapmodify(add: true, ldif: """
                dn: \(Self.suffix)
                objectClass: dcObject
                objectClass: organization
                dc: testrealm
                o: TestRealm

                """)
        } catch {
            await stop()
            throw error
        }
    }

    /// slapd.conf: schemas, back_mdb, the suffix; with replication also syncprov, `serverID` and
    /// (with a provider) a `refreshOnly` syncrepl consumer with an interval far beyond any test,
    /// so it refreshes once at start and then waits: replication happens only when asked for.
    static func configText(base: String, database: String, rootDN: String, rootPassword: String,
                           replication: Replication?) -> String {
        var text = """
            # Written by TestRealm: a private slapd for the realm's Kerberos principals.
            include /etc/ldap/schema/core.schema
            include /etc/ldap/schema/cosine.schema
            include /etc/ldap/schema/inetorgperson.schema
            include \(base)/kerberos.schema
            pidfile \(base)/slapd.pid
            argsfile \(base)/slapd.args
            modulepath /usr/lib/ldap
            moduleload back_mdb

            """
        if let replication {
            text += "moduleload syncprov\nserverID \(replication.serverID)\n"
        }
        text += """
            database mdb
            maxsize 104857600
            suffix "\(suffix)"
            rootdn "\(rootDN)"
            rootpw "\(rootPassword)"
            directory \(database)
            index objectClass eq
            index krbPrincipalName eq,pres,sub

            """
        if let replication {
            text += "index entryCSN,entryUUID eq\n"
            if let provider = replication.provider {
                // Values with spaces or quotes would break the directive: ours are a DN and a UUID.
                text += """
                    syncrepl rid=\(String(format: "%03d", replication.providerID)) provider=\(provider.uri)
                      type=refreshOnly interval=99:00:00:00 retry="1 5 2 +"
                      searchbase="\(suffix)" scope=sub schemachecking=off
                      bindmethod=simple binddn="\(provider.rootDN)" credentials="\(provider.rootPassword)"
                    multiprovider on

                    """
            }
            text += "overlay syncprov\nsyncprov-checkpoint 1 1\n"
        }
        return text
    }

    /// Stops slapd and starts it again on the same address and port with the same database, now
    /// pulling once from `provider` (syncrepl), or from nobody (`nil`).
    func restarted(pullingFrom provider: LDAPSettings?, providerID: Int) async throws -> LDAPServer {
        guard let serverID = start.serverID else {
            throw TestRealmError.invalidArgument("this directory server was not started for replication")
        }
        let port = UInt16(settings.uri.split(separator: ":").last?.filter(\.isNumber) ?? "") ?? 0
        await stop()
        CleanupRegistry.shared.unregister(realm: start.realmID, pid: process.pid)
        return try await Self.start(files: start.files, runner: runner, realmID: start.realmID, timeout: start.timeout,
                                    host: start.host, port: port,
                                    credentials: (settings.rootDN, settings.rootPassword),
                                    replication: Replication(serverID: serverID, provider: provider, providerID: providerID),
                                    seed: false)
    }

    /// `contextCSN` values of the suffix on `server` (one per server ID that wrote to it).
    func contextCSNs(of server: LDAPSettings) async throws -> [String] {
        let result = try await runner.run(
            "/usr/bin/ldapsearch", ["-LLL", "-o", "ldif-wrap=no", "-x", "-D", server.rootDN, "-w", server.rootPassword,
                                    "-H", server.uri, "-s", "base", "-b", server.suffix, "contextCSN"],
            secrets: [server.rootPassword])
        return result.standardOutput.split(separator: "\n").compactMap { line in
            line.hasPrefix("contextCSN: ") ? String(line.dropFirst("contextCSN: ".count)) : nil
        }
    }

    /// Polls until this server holds every change `provider` holds (its contextCSNs).
    func waitUntilCaughtUp(with provider: LDAPSettings, timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        let wanted = try await contextCSNs(of: provider)
        while true {
            let here = (try? await contextCSNs(of: settings)) ?? []
            if Self.hasCaughtUp(here, with: wanted) { return }
            if let exit = process.exitState {
                throw TestRealmError.ldapServerDidNotStart(
                    port: 0, reason: "slapd exited with \(exit.signaled ? "signal" : "status") \(exit.status) while replicating",
                    logTail: CommandRunner.tail(start.files.ldapDirectory + "/slapd.out"))
            }
            if ContinuousClock.now >= deadline {
                throw TestRealmError.ldapServerDidNotStart(
                    port: 0, reason: "replication from \(provider.uri) did not complete in \(timeout) (here \(here), there \(wanted))",
                    logTail: CommandRunner.tail(start.files.ldapDirectory + "/slapd.out"))
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    /// True when every change `provider` holds (its contextCSN per server ID) is also here.
    static func hasCaughtUp(_ consumer: [String], with provider: [String]) -> Bool {
        func sid(_ csn: String) -> Substring? { csn.split(separator: "#").dropFirst(2).first }
        return provider.allSatisfy { p in consumer.contains { sid($0) == sid(p) && $0 >= p } }
    }

    func stop() async { await process.stop() }

    /// Replaces `krbAllowedToDelegateTo` on `principal`'s entry (no values: removes it).
    func setAllowedToDelegate(principal: String, realm: String, targets: [String]) async throws {
        let dn = try await entryDN(of: principal)
        var ldif = "dn:: \(Self.base64(dn))\nchangetype: modify\nreplace: krbAllowedToDelegateTo\n"
        for target in targets { ldif += "krbAllowedToDelegateTo:: \(Self.base64(target))\n" }
        ldif += "-\n"
        try await ldapmodify(add: false, ldif: ldif)
    }

    /// The `krbAllowedToDelegateTo` values on `principal`'s entry.
    func allowedToDelegate(principal: String, realm: String) async throws -> [String] {
        let entries = try await search(principal: principal, attributes: ["krbAllowedToDelegateTo"])
        guard let entry = entries.first else {
            throw TestRealmError.invalidArgument("no LDAP entry for principal \(principal)")
        }
        return entry.all("krbAllowedToDelegateTo").map(\.value)
    }

    // MARK: LDAP tools

    private func ldapmodify(add: Bool, ldif: String) async throws {
        let path = runner.scratchDirectory + "/\(UUID().uuidString).ldif"
        try Self.write(ldif, to: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        try await runner.run("/usr/bin/ldapmodify",
                             (add ? ["-a"] : []) + ["-x", "-D", settings.rootDN, "-y", passwordFile,
                                                    "-H", socketURI, "-f", path])
    }

    private func entryDN(of principal: String) async throws -> String {
        let entries = try await search(principal: principal, attributes: ["1.1"])
        guard let entry = entries.first else {
            throw TestRealmError.invalidArgument("no LDAP entry for principal \(principal)")
        }
        return entry.dn
    }

    /// Entries whose `krbPrincipalName` equals `principal`, below the Kerberos container.
    private func search(principal: String, attributes: [String]) async throws -> [LDIFRecord] {
        let result = try await runner.run(
            "/usr/bin/ldapsearch",
            ["-LLL", "-o", "ldif-wrap=no", "-x", "-D", settings.rootDN, "-y", passwordFile, "-H", socketURI,
             "-b", settings.containerDN, "-s", "sub", "(krbPrincipalName=\(Self.filterEscaped(principal)))"]
                + attributes)
        do {
            return try LDIFReader.read(result.standardOutput, file: "ldapsearch").records
        } catch {
            throw TestRealmError.invalidArgument("ldapsearch printed LDIF that cannot be read: \(error)")
        }
    }

    /// RFC 4515 escaping of an assertion value.
    static func filterEscaped(_ value: String) -> String {
        var escaped = ""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "*": escaped += "\\2a"
            case "(": escaped += "\\28"
            case ")": escaped += "\\29"
            case "\\": escaped += "\\5c"
            case "\0": escaped += "\\00"
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }

    static func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

    private static func write(_ text: String, to path: String) throws {
        do {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw TestRealmError.fileSystem(path: path, reason: "\(error)")
        }
    }
}
