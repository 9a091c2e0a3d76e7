import Foundation

/// A real Samba AD DC for the tests: provisioned in a temporary directory, serving LDAP and
/// Kerberos on its own 127.x.y.z address (Samba's ports are AD's: 88, 389), started by PID and
/// stopped by PID when the test process exits. One per test process (``shared``): provisioning
/// takes seconds. Accounts, groups, Protected Users and delegation are set with `samba-tool`.
final class SambaDC: Sendable {
    let root: URL
    let address: String
    let realm = "MIGAUTH.TEST"
    let domain = "migauth.test"
    let baseDN = "DC=migauth,DC=test"
    let pid: Int32
    /// Seconds spent provisioning, populating and starting.
    let setupSeconds: Double
    let provisionSeconds: Double

    var smbConf: URL { root.appendingPathComponent("etc/smb.conf") }
    var samLDB: URL { root.appendingPathComponent("private/sam.ldb") }
    var krb5Conf: URL { root.appendingPathComponent("krb5.conf") }
    var ccache: URL { root.appendingPathComponent("ccache") }
    var uri: String { "ldap://\(address)" }
    /// A credential cache with no ticket.
    var emptyCCache: URL { root.appendingPathComponent("empty-ccache") }

    /// The environment a child process needs to use this DC: its krb5.conf and the ticket cache.
    var kerberosEnvironment: [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["KRB5_CONFIG"] = krb5Conf.path
        env["KRB5CCNAME"] = "FILE:" + ccache.path
        env.removeValue(forKey: "KRB5_KTNAME")
        return env
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The process's DC, provisioned on first use.
    static let shared: Result<SambaDC, Failure> = Result { () throws(Failure) -> SambaDC in try SambaDC() }

    nonisolated(unsafe) private static var running: Int32 = 0
    nonisolated(unsafe) private static var runningRoot: String = ""

    private init() throws(Failure) {
        let start = Date()
        let fm = FileManager.default
        let root = fm.temporaryDirectory.appendingPathComponent("migauth-samba-\(UUID().uuidString.prefix(8))")
        self.root = root
        let realm = "MIGAUTH.TEST"
        let krb5Conf = root.appendingPathComponent("krb5.conf"), ccache = root.appendingPathComponent("ccache")
        // A loopback address of its own, so parallel test processes do not collide on port 389.
        let address = "127.\(Int.random(in: 100...250)).\(Int.random(in: 1...250)).\(Int.random(in: 2...250))"
        self.address = address
        let password = "Mig-\(UUID().uuidString.prefix(12))-a1"
        do {
            for d in ["etc", "private", "state", "cache", "lock", "pid", "log", "sock"] {
                try fm.createDirectory(at: root.appendingPathComponent(d), withIntermediateDirectories: true)
            }
        } catch { throw Failure(description: "cannot create \(root.path): \(error)") }
        let r = root.path
        try Self.run("samba-tool", ["domain", "provision", "--realm=\(realm)", "--domain=MIGAUTH", "--server-role=dc",
                                    "--dns-backend=NONE", "--adminpass=\(password)", "--host-name=dc1", "--host-ip=\(address)",
                                    "--targetdir=\(r)",
                                    "--option=interfaces=\(address)/8", "--option=bind interfaces only=yes",
                                    "--option=pid directory=\(r)/pid", "--option=lock directory=\(r)/lock",
                                    "--option=state directory=\(r)/state", "--option=cache directory=\(r)/cache",
                                    "--option=private dir=\(r)/private", "--option=log file=\(r)/log/log.%m",
                                    "--option=winbindd socket directory=\(r)/sock", "--option=ntp signd socket directory=\(r)/sock",
                                    "--option=server services=ldap kdc"])
        provisionSeconds = Date().timeIntervalSince(start)
        try Self.populate(root.appendingPathComponent("private/sam.ldb").path, domain: "migauth.test", baseDN: "DC=migauth,DC=test",
                          address: address)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/samba")
        // -F: foreground, no daemon (not -i, which exits when its stdin closes).
        process.arguments = ["-F", "-s", root.appendingPathComponent("etc/smb.conf").path]
        process.standardOutput = FileHandle.nullDevice
        do {
            let logURL = root.appendingPathComponent("log/samba.out")
            _ = fm.createFile(atPath: logURL.path, contents: nil)
            let log = try FileHandle(forWritingTo: logURL)
            process.standardError = log
            try process.run()
        } catch { throw Failure(description: "cannot start samba: \(error)") }
        let pid = process.processIdentifier
        self.pid = pid
        Self.running = pid
        Self.runningRoot = r
        atexit {
            let pid = SambaDC.running
            if pid > 0 {
                kill(pid, SIGTERM)
                // Let it (and its children) finish writing before the directory goes.
                var waited = 0
                while waited < 50 && waitpid(pid, nil, WNOHANG) == 0 {
                    usleep(100_000)
                    waited += 1
                }
                if waited == 50 { kill(pid, SIGKILL) }
            }
            if !SambaDC.runningRoot.isEmpty { try? FileManager.default.removeItem(atPath: SambaDC.runningRoot) }
        }
        let krb5 = """
        [libdefaults]
          default_realm = \(realm)
          dns_lookup_kdc = false
          dns_lookup_realm = false
          dns_canonicalize_hostname = false
          rdns = false
        [realms]
          \(realm) = {
            kdc = \(address)
          }
        """
        do { try krb5.write(to: krb5Conf, atomically: true, encoding: .utf8) } catch {
            throw Failure(description: "cannot write krb5.conf: \(error)")
        }
        // Wait for LDAP and the KDC to accept.
        let deadline = Date().addingTimeInterval(60)
        while !(Self.accepts(address, 389) && Self.accepts(address, 88)) {
            guard Date() < deadline, process.isRunning else {
                let log = (try? String(contentsOfFile: "\(r)/log/samba.out", encoding: .utf8)) ?? ""
                throw Failure(description: "samba did not start on \(address): \(log.suffix(1500))")
            }
            usleep(100_000)
        }
        var env = ProcessInfo.processInfo.environment
        env["KRB5_CONFIG"] = krb5Conf.path
        env["KRB5CCNAME"] = "FILE:" + ccache.path
        // The test's own ticket from Samba's KDC (the password goes to kinit on stdin only).
        var attempts = 0
        while true {
            do {
                try Self.run("kinit", ["Administrator@\(realm)"], input: password + "\n", environment: env)
                break
            } catch {
                attempts += 1
                if attempts >= 20 { throw error }
                usleep(250_000)
            }
        }
        setupSeconds = Date().timeIntervalSince(start)
    }

    /// Computers, users, groups, Protected Users (direct and nested) and delegation, by samba-tool
    /// on the database before the DC starts.
    private static func populate(_ ldb: String, domain: String, baseDN: String, address: String) throws(Failure) {
        let h = ["-H", ldb]
        let migration = "Microsoft Virtual System Migration Service"
        for (name, os) in [("HV01", "Windows Server 2012 R2 Datacenter"), ("HV02", "Windows Server 2012 R2 Datacenter"),
                           ("HV03", "Windows Server 2016 Datacenter"), ("WS01", "Windows 10 Enterprise")] {
            try run("samba-tool", ["computer", "create", name] + h)
            let fqdn = "\(name).\(domain)".lowercased()
            let ldif = """
            dn: CN=\(name),CN=Computers,\(baseDN)
            changetype: modify
            replace: operatingSystem
            operatingSystem: \(os)
            -
            replace: dNSHostName
            dNSHostName: \(fqdn)
            -
            add: servicePrincipalName
            servicePrincipalName: \(migration)/\(name)
            servicePrincipalName: \(migration)/\(fqdn)

            """
            try run("ldbmodify", h, input: ldif)
        }
        for user in ["alice", "bob", "carol", "dave", "erin"] {
            try run("samba-tool", ["user", "create", user, "Pw-\(UUID().uuidString.prefix(10))-x9"] + h)
        }
        try run("samba-tool", ["user", "sensitive", "carol", "on"] + h)
        try run("samba-tool", ["group", "add", "Hyper-V Operators"] + h)
        try run("samba-tool", ["group", "add", "Tier0 Admins"] + h)
        try run("samba-tool", ["group", "addmembers", "Hyper-V Operators", "bob,dave,erin"] + h)
        try run("samba-tool", ["group", "addmembers", "Domain Admins", "alice"] + h)
        try run("samba-tool", ["group", "addmembers", "Protected Users", "dave,Tier0 Admins"] + h)
        try run("samba-tool", ["group", "addmembers", "Tier0 Admins", "erin"] + h)
        try run("samba-tool", ["delegation", "add-service", "HV01$", "\(migration)/hv02.\(domain)"] + h)
        try run("samba-tool", ["delegation", "add-service", "HV01$", "cifs/hv02.\(domain)"] + h)
        try run("samba-tool", ["delegation", "add-service", "HV03$", "\(migration)/hv01.\(domain)"] + h)
        try run("samba-tool", ["delegation", "for-any-protocol", "HV03$", "on"] + h)
        // libldap is told not to canonicalise the host, so the SASL service is ldap/<address>.
        try run("samba-tool", ["spn", "add", "ldap/\(address)", "DC1$"] + h)
    }

    static func accepts(_ address: String, _ port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_port = port.bigEndian
        guard inet_pton(AF_INET, address, &sa.sin_addr) == 1 else { return false }
        return withUnsafePointer(to: &sa) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    /// Runs a tool to completion; throws with its output when it fails.
    @discardableResult
    static func run(_ tool: String, _ arguments: [String], input: String? = nil,
                    environment: [String: String]? = nil) throws(Failure) -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [tool] + arguments
        if let environment { process.environment = environment }
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        let stdin = Pipe()
        process.standardInput = stdin
        do { try process.run() } catch { throw Failure(description: "\(tool): \(error)") }
        if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
        try? stdin.fileHandleForWriting.close()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw Failure(description: "\(tool) \(arguments.prefix(3).joined(separator: " ")) exited \(process.terminationStatus): \(text.suffix(800))")
        }
        return text
    }
}
