import Foundation

/// The private OpenLDAP `slapd` behind an LDAP-backed realm: Kerberos schema, back_mdb, suffix
/// `dc=testrealm`, listening on `ldap://127.0.0.1:PORT/` and an ldapi socket in the realm directory.
final class LDAPServer: Sendable {
    let process: ChildProcess
    let settings: LDAPSettings
    /// `ldapi://` URL of the Unix socket (used for our own ldapmodify/ldapsearch).
    let socketURI: String
    private let passwordFile: String
    private let runner: CommandRunner

    private init(process: ChildProcess, settings: LDAPSettings, socketURI: String, passwordFile: String,
                 runner: CommandRunner) {
        self.process = process
        self.settings = settings
        self.socketURI = socketURI
        self.passwordFile = passwordFile
        self.runner = runner
    }

    static let suffix = "dc=testrealm"

    /// Writes the schema and slapd.conf, starts `slapd -d 256` in the foreground (so the PID is the
    /// daemon's), waits for its port and adds the suffix entry.
    static func start(files: RealmFiles, runner: CommandRunner, realmID: String,
                      timeout: Duration) async throws -> LDAPServer {
        let base = files.ldapDirectory
        let database = base + "/db"
        do {
            try FileManager.default.createDirectory(atPath: database, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw TestRealmError.fileSystem(path: database, reason: "\(error)")
        }
        let schema = try await runner.run("/usr/bin/gzip", ["-dc", "/usr/share/doc/krb5-kdc-ldap/kerberos.schema.gz"])
        try write(schema.standardOutput, to: base + "/kerberos.schema")
        let rootDN = "cn=admin," + suffix
        let rootPassword = UUID().uuidString
        let passwordFile = base + "/rootpw"
        try write(rootPassword, to: passwordFile)
        try write("""
            # Written by TestRealm: a private slapd for the realm's Kerberos principals.
            include /etc/ldap/schema/core.schema
            include /etc/ldap/schema/cosine.schema
            include /etc/ldap/schema/inetorgperson.schema
            include \(base)/kerberos.schema
            pidfile \(base)/slapd.pid
            argsfile \(base)/slapd.args
            modulepath /usr/lib/ldap
            moduleload back_mdb
            database mdb
            maxsize 104857600
            suffix "\(suffix)"
            rootdn "\(rootDN)"
            rootpw "\(rootPassword)"
            directory \(database)
            index objectClass eq
            index krbPrincipalName eq,pres,sub

            """, to: base + "/slapd.conf")
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
            let port = try LoopbackPort.free()
            let uri = "ldap://127.0.0.1:\(port)/"
            let (executable, arguments) = ChildProcess.dyingWithParent(
                "/usr/sbin/slapd", ["-f", base + "/slapd.conf", "-h", uri + " " + socketURI, "-d", "256"])
            let child = try ChildProcess(
                executable: executable, arguments: arguments,
                environment: runner.environment, standardOutputPath: output + ".stdout", standardErrorPath: output)
            CleanupRegistry.shared.register(realm: realmID, directory: nil, pid: child.pid)
            let deadline = ContinuousClock.now + timeout
            var failure: TestRealmError?
            while true {
                if let exit = child.exitState {
                    failure = .ldapServerDidNotStart(
                        port: port, reason: "slapd exited with \(exit.signaled ? "signal" : "status") \(exit.status)",
                        logTail: CommandRunner.tail(output))
                    break
                }
                // Both listeners: slapd binds the TCP one first, and our own tools use the ldapi socket.
                if LoopbackPort.acceptsConnections(port), LoopbackPort.acceptsConnections(unixSocket: socketPath) { break }
                if ContinuousClock.now >= deadline {
                    await child.stop()
                    failure = .ldapServerDidNotStart(port: port, reason: "not ready after \(timeout)",
                                                     logTail: CommandRunner.tail(output))
                    break
                }
                try? await Task.sleep(for: .milliseconds(20))
            }
            if let failure {
                CleanupRegistry.shared.unregister(realm: realmID, pid: child.pid)
                if attempt < 4, case .ldapServerDidNotStart(_, _, let tail) = failure,
                   tail.contains("Address already in use") || tail.contains("errno=98") {
                    continue
                }
                throw failure
            }
            let server = LDAPServer(
                process: child,
                settings: LDAPSettings(uri: uri, suffix: suffix, rootDN: rootDN, rootPassword: rootPassword),
                socketURI: socketURI, passwordFile: passwordFile, runner: runner)
            do {
                try await server.ldapmodify(add: true, ldif: """
                    dn: \(suffix)
                    objectClass: dcObject
                    objectClass: organization
                    dc: testrealm
                    o: TestRealm

                    """)
            } catch {
                await server.stop()
                throw error
            }
            return server
        }
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
        return entry.values["krballowedtodelegateto"] ?? []
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

    private struct Entry {
        var dn: String
        var values: [String: [String]]
    }

    /// Entries whose `krbPrincipalName` equals `principal`, below the Kerberos container.
    private func search(principal: String, attributes: [String]) async throws -> [Entry] {
        let result = try await runner.run(
            "/usr/bin/ldapsearch",
            ["-LLL", "-o", "ldif-wrap=no", "-x", "-D", settings.rootDN, "-y", passwordFile, "-H", socketURI,
             "-b", settings.containerDN, "-s", "sub", "(krbPrincipalName=\(Self.filterEscaped(principal)))"]
                + attributes)
        var entries: [Entry] = []
        for line in result.standardOutput.split(separator: "\n", omittingEmptySubsequences: true) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            var rest = line[line.index(after: colon)...]
            let encoded = rest.hasPrefix(":")
            if encoded { rest = rest.dropFirst() }
            let raw = rest.trimmingCharacters(in: .whitespaces)
            let value = encoded ? (Data(base64Encoded: raw).map { String(decoding: $0, as: UTF8.self) } ?? raw) : raw
            if name == "dn" {
                entries.append(Entry(dn: value, values: [:]))
            } else if !entries.isEmpty {
                entries[entries.count - 1].values[name, default: []].append(value)
            }
        }
        return entries
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
