import Directory
import DirectoryLDAP
import Foundation
import Testing
import WindowsStatus

/// The live directory against a real Samba AD DC: read over LDAP (SASL GSSAPI with a ticket from
/// Samba's KDC, paged) it must give the same world as the LDIF export of the same DC.
@Suite(.serialized) struct LiveDirectoryTests {
    static var migauth: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("migauth")
    }

    static func dc() throws -> SambaDC { try SambaDC.shared.get() }

    /// Runs the built `migauth`; returns (exit status, stdout, stderr).
    static func migauth(_ arguments: [String], environment: [String: String]) throws -> (Int32, String, String) {
        let p = Process()
        p.executableURL = migauth
        p.arguments = arguments
        p.environment = environment
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        // Read both pipes while it runs (an audit's JSON can exceed a pipe buffer).
        let errData = LockedData()
        let reader = Thread { errData.set(err.fileHandleForReading.readDataToEndOfFile()) }
        reader.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        while !errData.done { usleep(10_000) }
        return (p.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData.value, as: UTF8.self))
    }

    final class LockedData: @unchecked Sendable {
        private let lock = NSLock()
        private var data = Data()
        private var finished = false
        func set(_ d: Data) { lock.lock(); data = d; finished = true; lock.unlock() }
        var done: Bool { lock.lock(); defer { lock.unlock() }; return finished }
        var value: Data { lock.lock(); defer { lock.unlock() }; return data }
    }

    /// The DC's objects as `ldbsearch` exports them: the domain partition (the same filter and
    /// attributes the LDAP reader asks for) and the configuration's crossRef objects.
    static func export(_ dc: SambaDC) throws -> String {
        let main = try SambaDC.run("ldbsearch", ["-H", dc.samLDB.path, "-b", dc.baseDN, "-s", "sub", LDAPDirectorySource.filter]
                                   + LDAPDirectorySource.attributes)
        let partitions = try SambaDC.run("ldbsearch", ["-H", dc.samLDB.path, "-b", "CN=Partitions,CN=Configuration,\(dc.baseDN)",
                                                       "(&(objectClass=crossRef)(nETBIOSName=*))", "objectClass", "nETBIOSName", "dnsRoot"])
        // As ldbsearch prints it: search references (`ref: ldap:///CN=Configuration,…`) included.
        return main + "\n" + partitions
    }

    @Test func exportHoldsWhatSambaToolSet() throws {
        let dc = try Self.dc()
        print("Samba AD DC on \(dc.address): provision \(String(format: "%.1f", dc.provisionSeconds)) s, ready with a ticket after \(String(format: "%.1f", dc.setupSeconds)) s")
        let directory = try Directory.importLDIF(try Self.export(dc), file: "ldbsearch")
        let d = "migauth.test"
        #expect(directory.domain(d)?.domain.netBIOSName == "MIGAUTH")
        let hv01 = try #require(directory.computer("HV01", domain: d))
        #expect(hv01.delegation == .constrainedKerberosOnly)
        #expect(Set(hv01.allowedToDelegateTo.map { $0.lowercased() })
                == ["microsoft virtual system migration service/hv02.migauth.test", "cifs/hv02.migauth.test"])
        #expect(directory.computer("HV03", domain: d)?.delegation == .constrainedAnyProtocol)
        #expect(directory.computer("HV03", domain: d)?.operatingSystem == "Windows Server 2016 Datacenter")
        #expect(directory.user(PrincipalRef(domain: d, name: "carol"))?.sensitive == true)
        #expect(directory.user(PrincipalRef(domain: d, name: "bob"))?.sensitive == false)
        let protected = PrincipalRef(domain: d, name: "Protected Users")
        #expect(directory.isMember(PrincipalRef(domain: d, name: "dave"), of: protected))
        #expect(directory.isMember(PrincipalRef(domain: d, name: "erin"), of: protected), "through Tier0 Admins")
        #expect(!directory.isMember(PrincipalRef(domain: d, name: "bob"), of: protected))
        #expect(directory.isDomainAdmin(PrincipalRef(domain: d, name: "alice"), of: d))
    }

    @Test func liveWorldEqualsTheLDIFWorld() throws {
        let dc = try Self.dc()
        let ldif = dc.root.appendingPathComponent("export.ldif")
        try Self.export(dc).write(to: ldif, atomically: true, encoding: .utf8)
        let fromLDIF = dc.root.appendingPathComponent("from-ldif.json").path
        let fromLDAP = dc.root.appendingPathComponent("from-ldap.json").path
        let env = dc.kerberosEnvironment
        let a = try Self.migauth(["env", "init", "--force", "--env", fromLDIF, "--ldif", ldif.path], environment: env)
        #expect(a.0 == 0, "\(a.2)")
        // Pages of 7 entries: the DC's domain partition takes several round trips.
        let b = try Self.migauth(["env", "init", "--force", "--env", fromLDAP, "--ldap", dc.uri, "--ldap-page-size", "7"], environment: env)
        #expect(b.0 == 0, "\(b.2)")
        func world(_ path: String) throws -> NSDictionary {
            let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
            let dict = try #require((object as? [String: Any])?["environment"] as? [String: Any])
            return try #require(dict["world"] as? NSDictionary, "no world in \(dict.keys)")
        }
        let w1 = try world(fromLDIF), w2 = try world(fromLDAP)
        #expect(w1 == w2, "the live directory differs from its LDIF export")
        #expect(b.1.contains("migauth.test"))
    }

    @Test func auditAndDiagnoseReadTheLiveDirectory() throws {
        let dc = try Self.dc()
        let env = dc.kerberosEnvironment
        let html = dc.root.appendingPathComponent("audit.html").path
        let r = try Self.migauth(["audit", "--ldap", dc.uri, "--user", "MIGAUTH\\alice", "--json", "--html", html], environment: env)
        #expect(r.0 == 1, "some pairs are blocked: \(r.2)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.1.utf8)) as? [String: Any])
        #expect(object["hosts"] as? [String] == ["HV01", "HV02", "HV03"])
        let pairs = try #require(object["pairs"] as? [[String: Any]])
        func verdict(_ s: String, _ d: String, _ v: String) -> [String: Any]? {
            pairs.first { $0["source"] as? String == s && $0["destination"] as? String == d }?[v] as? [String: Any]
        }
        #expect(verdict("HV01", "HV02", "live-kerberos")?["works"] as? Bool == true, "samba-tool delegated HV01 → HV02")
        #expect(verdict("HV01", "HV02", "storage-kerberos")?["works"] as? Bool == true)
        #expect(verdict("HV02", "HV01", "live-kerberos")?["rules"] as? [String] == ["A2"])
        #expect((verdict("HV03", "HV01", "live-kerberos")?["rules"] as? [String])?.contains("P4") == true)
        #expect(FileManager.default.fileExists(atPath: html))
        // dave is in Protected Users: A4 for every Kerberos and CredSSP move.
        let d = try Self.migauth(["audit", "--ldap", dc.uri, "--user", "dave", "--hosts", "HV01,HV02", "--json"], environment: env)
        let dj = try #require(try JSONSerialization.jsonObject(with: Data(d.1.utf8)) as? [String: Any])
        let dp = try #require((dj["pairs"] as? [[String: Any]])?.first)
        #expect((dp["live-kerberos"] as? [String: Any])?["rules"] as? [String] == ["A4"] || ((dp["live-kerberos"] as? [String: Any])?["rules"] as? [String])?.contains("A4") == true)
    }

    @Test func noTicketIsATypedError() throws {
        let dc = try Self.dc()
        var env = dc.kerberosEnvironment
        env["KRB5CCNAME"] = "FILE:" + dc.emptyCCache.path
        let r = try Self.migauth(["env", "init", "--force", "--env", dc.root.appendingPathComponent("none.json").path, "--ldap", dc.uri],
                                 environment: env)
        #expect(r.0 == 2)
        #expect(r.2.contains("SASL GSSAPI bind"), "\(r.2)")
        #expect(r.2.contains("0x8009030E"), "\(r.2)")
        #expect(r.2.contains("kinit"))
    }

    @Test func unreachableServerIsATypedError() async throws {
        // A port nobody listens on: bind one, note it, close it.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        let port = UInt16(bigEndian: sa.sin_port)
        close(fd)
        do {
            _ = try await LDAPDirectorySource(uri: "ldap://127.0.0.1:\(port)", timeout: 5).directory()
            Issue.record("read from a closed port")
        } catch {
            #expect(error.status == .connectionRefused, "\(error)")
            #expect(error.code == -1)
        }
    }
}
