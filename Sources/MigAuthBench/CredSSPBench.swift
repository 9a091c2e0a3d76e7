import CredSSP
import Foundation
import GSS
import NIOCore
import NIOExtras
import NIOPosix
import NIOSSL
import TestRealm
import TLSHandshakeAnchor

/// CredSSP benchmark: full exchanges per second, one after the other, over loopback TCP (a new connection, client
/// and server each time) and in memory (client and server stepping each other, no sockets); TLS 1.3, Kerberos inside
/// SPNEGO with the user's tickets from a ccache, RSA-2048 server certificate. Swift client + Swift server against
/// pyspnego's client + server (`Tests/CredSSPTests/peer/credssp_bench.py`) in the same run and realm.
///
/// The anchor, measured in the same run (``CredSSPAnchor``): a bare TLS 1.3 handshake with the same RSA key in BoringSSL
/// plus the two Kerberos contexts alone; the Swift exchange's CPU time per exchange is reported as a multiple of it.
/// `--rss N` adds the resident-set growth over N more exchanges of each kind (memory kept per handshake).
///
/// Usage: `migauth-bench credssp [--exchanges N] [--rounds R] [--peer-directory DIR] [--swift-only] [--rss N]`
enum CredSSPBench {
    /// One side's result: exchanges per second and CPU milliseconds per exchange (all of the process's threads).
    struct Figure {
        var rate: Double
        var cpuMilliseconds: Double
    }

    /// CPU time of this process (user + system, all threads), in seconds.
    static func processCPU() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    static func run(_ arguments: [String]) async throws {
        let options = try Options(arguments)
        let exchanges = options.exchanges, rounds = options.rounds, peerDirectory = options.peerDirectory
        let swiftOnly = options.swiftOnly, rssExchanges = options.rssExchanges

        let realm = try await TestRealm.start()
        for (key, value) in realm.environment { setenv(key, value, 1) }
        let host = "hostb.test"
        let service = "TERMSRV/\(host)"
        try await realm.addPrincipal(service)
        let keytab = try await realm.exportKeytab([service])
        try await realm.addPrincipal("bench", password: "bench-password")
        let (chain, key) = try certificate(in: realm.directory)
        let anchorTLS = try TLSPair(
            certificatePEM: Array(try Data(contentsOf: URL(fileURLWithPath: "\(realm.directory)/credssp.pem"))),
            keyPEM: Array(try Data(contentsOf: URL(fileURLWithPath: "\(realm.directory)/credssp.key"))))
        let swiftCCache = try await realm.kinit("bench", password: "bench-password")
        let pythonCCache = try await realm.kinit("bench", password: "bench-password")

        let acceptor = try GSSCredential.acquire(name: GSSName(principal: "\(service)@\(realm.name)"), usage: .accept,
                                                 mechanisms: [.spnego], store: GSSCredentialStore(keytab: "FILE:" + keytab))
        let user = try GSSCredential.acquire(name: GSSName(principal: "bench@\(realm.name)"), usage: .initiate,
                                             mechanisms: [.spnego], store: GSSCredentialStore(ccache: swiftCCache))
        let target = try GSSName("TERMSRV@\(host)", kind: .hostBasedService)

        let pythonEnvironment = realm.environment.merging(["KRB5_KTNAME": "FILE:" + keytab]) { $1 }
        var best: [String: Figure] = [:]
        var pythonTLS = ""
        func keep(_ key: String, _ figure: Figure) {
            let old = best[key] ?? Figure(rate: 0, cpuMilliseconds: .infinity)
            best[key] = Figure(rate: max(old.rate, figure.rate), cpuMilliseconds: min(old.cpuMilliseconds, figure.cpuMilliseconds))
        }
        func text(_ figure: Figure) -> String { String(format: "%.1f/s %.2f ms CPU", figure.rate, figure.cpuMilliseconds) }
        for round in 1...rounds {
            let tlsAnchor = try await measure(exchanges) {
                let start = ContinuousClock.now
                for _ in 0..<exchanges { try anchorTLS.handshake() }
                return rate(exchanges, since: start)
            }
            let kerberosAnchor = try await measure(exchanges) {
                let start = ContinuousClock.now
                for _ in 0..<exchanges { try CredSSPAnchor.kerberosContexts(user: user, acceptor: acceptor, target: target) }
                return rate(exchanges, since: start)
            }
            keep("anchor tls", tlsAnchor)
            keep("anchor kerberos", kerberosAnchor)
            let tcp = try await measure(exchanges) {
                try await swiftExchanges(exchanges, chain: chain, key: key, acceptor: acceptor, user: user, target: target)
            }
            let memory = try await measure(exchanges) {
                try await swiftInMemory(exchanges, chain: chain, key: key, acceptor: acceptor, user: user, target: target)
            }
            keep("swift tcp", tcp)
            keep("swift memory", memory)
            let anchor = tlsAnchor.cpuMilliseconds + kerberosAnchor.cpuMilliseconds
            print(String(format: "round %d: anchor TLS 1.3 handshake %.3f ms + Kerberos contexts %.3f ms = %.3f ms CPU; "
                         + "Swift/anchor (CPU) in memory %.2f, over TCP %.2f", round, tlsAnchor.cpuMilliseconds,
                         kerberosAnchor.cpuMilliseconds, anchor, memory.cpuMilliseconds / anchor, tcp.cpuMilliseconds / anchor))
            if swiftOnly {
                print("round \(round): Swift over TCP \(text(tcp)), in memory \(text(memory))")
                continue
            }
            let (pythonTCP, tls) = try await pythonExchanges(exchanges, peerDirectory: peerDirectory, host: host,
                                                             environment: pythonEnvironment, ccache: pythonCCache,
                                                             realm: realm.name, inMemory: false)
            let (pythonMemory, _) = try await pythonExchanges(exchanges, peerDirectory: peerDirectory, host: host,
                                                              environment: pythonEnvironment, ccache: pythonCCache,
                                                              realm: realm.name, inMemory: true)
            keep("python tcp", pythonTCP)
            keep("python memory", pythonMemory)
            pythonTLS = tls
            print("round \(round) (\(tls)): over TCP Swift \(text(tcp)), pyspnego \(text(pythonTCP)); "
                  + "in memory Swift \(text(memory)), pyspnego \(text(pythonMemory))")
        }
        if rssExchanges > 0 {
            try await printResidentSet(rssExchanges, chain: chain, key: key, acceptor: acceptor, user: user, target: target)
        }
        printBest(best, rounds: rounds, tls: pythonTLS)
        await realm.shutdown()
    }

    /// The bench's options: `--exchanges N --rounds N --peer-directory DIR --swift-only --rss N`.
    struct Options {
        var exchanges = 300
        var rounds = 3
        var peerDirectory = "Tests/CredSSPTests/peer"
        var swiftOnly = false
        var rssExchanges = 0

        init(_ arguments: [String]) throws {
            var iterator = arguments.makeIterator()
            while let argument = iterator.next() {
                switch argument {
                case "--exchanges": exchanges = Int(iterator.next() ?? "") ?? exchanges
                case "--rounds": rounds = Int(iterator.next() ?? "") ?? rounds
                case "--peer-directory": peerDirectory = iterator.next() ?? peerDirectory
                case "--swift-only": swiftOnly = true  // for profiling
                case "--rss": rssExchanges = Int(iterator.next() ?? "") ?? rssExchanges
                default: throw BenchError("unknown option \(argument)")
                }
            }
        }
    }

    /// Memory kept per exchange: the resident set after a warm-up, then after `exchanges` more (both modes).
    static func printResidentSet(_ exchanges: Int, chain: [NIOSSLCertificate], key: NIOSSLPrivateKey, acceptor: GSSCredential,
                                 user: GSSCredential, target: GSSName) async throws {
        _ = try await swiftInMemory(100, chain: chain, key: key, acceptor: acceptor, user: user, target: target)
        let before = residentBytes()
        _ = try await swiftInMemory(exchanges, chain: chain, key: key, acceptor: acceptor, user: user, target: target)
        let middle = residentBytes()
        _ = try await swiftExchanges(exchanges, chain: chain, key: key, acceptor: acceptor, user: user, target: target)
        let after = residentBytes()
        print(String(format: "resident set: %.1f MB; +%.1f MB after %d exchanges in memory (%.2f KB each), "
                     + "+%.1f MB after %d over TCP (%.2f KB each)", Double(before) / 1e6,
                     Double(middle - before) / 1e6, exchanges, Double(middle - before) / 1e3 / Double(exchanges),
                     Double(after - middle) / 1e6, exchanges, Double(after - middle) / 1e3 / Double(exchanges)))
    }

    /// The best figures of all rounds, against the anchor and pyspnego.
    static func printBest(_ best: [String: Figure], rounds: Int, tls: String) {
        func text(_ figure: Figure) -> String { String(format: "%.1f/s %.2f ms CPU", figure.rate, figure.cpuMilliseconds) }
        print("best of \(rounds) (TLS \(tls)):")
        if let tlsAnchor = best["anchor tls"], let kerberosAnchor = best["anchor kerberos"] {
            let anchor = tlsAnchor.cpuMilliseconds + kerberosAnchor.cpuMilliseconds
            print(String(format: "  anchor: TLS 1.3 handshake (BoringSSL, RSA-2048) %.3f ms + Kerberos contexts %.3f ms = %.3f ms CPU",
                         tlsAnchor.cpuMilliseconds, kerberosAnchor.cpuMilliseconds, anchor))
            for mode in ["memory", "tcp"] {
                guard let swift = best["swift \(mode)"] else { continue }
                print(String(format: "  Swift %@ %.3f ms CPU = %.2f× the anchor (goal ≤ %.2f×)",
                             mode == "tcp" ? "over loopback TCP" : "in memory", swift.cpuMilliseconds,
                             swift.cpuMilliseconds / anchor, mode == "tcp" ? 1.5 : 1.25))
            }
        }
        for mode in ["tcp", "memory"] {
            guard let swift = best["swift \(mode)"] else { continue }
            let python = best["python \(mode)"] ?? Figure(rate: .nan, cpuMilliseconds: .nan)
            print(String(format: "  %@: Swift %@, pyspnego %@; rate Swift/pyspnego %.2f, CPU pyspnego/Swift %.2f",
                         mode == "tcp" ? "loopback TCP" : "in memory", text(swift), text(python),
                         swift.rate / python.rate, python.cpuMilliseconds / swift.cpuMilliseconds))
        }
    }

    /// The process's resident set (`/proc/self/statm`), in bytes.
    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// Runs `body` (which returns exchanges per second) and adds the CPU time per exchange.
    static func measure(_ count: Int, _ body: () async throws -> Double) async throws -> Figure {
        let cpu = processCPU()
        let rate = try await body()
        return Figure(rate: rate, cpuMilliseconds: (processCPU() - cpu) * 1000 / Double(count))
    }

    /// Sequential exchanges in one process without sockets: client and server step each other directly.
    static func swiftInMemory(_ count: Int, chain: [NIOSSLCertificate], key: NIOSSLPrivateKey, acceptor: GSSCredential,
                              user: GSSCredential, target: GSSName) async throws -> Double {
        let policy = CredSSPPolicy(minimumTLSVersion: .tlsv13)
        let start = ContinuousClock.now
        for _ in 0..<count {
            let client = try CredSSPClient(
                credentials: CredSSPCredentials(domain: "MIGRATION", user: "bench", password: "bench-password"),
                inner: GSSInitiatorAuthenticator(target: target, credential: user), verification: .insecureAcceptAny,
                policy: policy)
            let server = try CredSSPServer(certificateChain: chain, privateKey: key,
                                           inner: GSSAcceptorAuthenticator(credential: acceptor), policy: policy)
            guard case .send(var toServer) = try await client.step(nil) else { throw BenchError("no ClientHello") }
            exchange: while true {
                switch try await server.step(toServer) {
                case .finished(let credentials):
                    guard credentials.user == "bench" else { throw BenchError("wrong credentials delivered") }
                    break exchange
                case .send(let toClient):
                    switch try await client.step(toClient) {
                    case .send(let bytes), .finished(let bytes): toServer = bytes
                    }
                }
            }
        }
        return rate(count, since: start)
    }

    static func rate(_ count: Int, since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(count) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    /// Sequential exchanges, Swift on both sides; exchanges per second.
    static func swiftExchanges(_ count: Int, chain: [NIOSSLCertificate], key: NIOSSLPrivateKey, acceptor: GSSCredential,
                               user: GSSCredential, target: GSSName) async throws -> Double {
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0) { framed($0) }
        guard let port = listener.channel.localAddress?.port else { throw BenchError("no port") }
        let policy = CredSSPPolicy(minimumTLSVersion: .tlsv13)
        let credentials = CredSSPCredentials(domain: "MIGRATION", user: "bench", password: "bench-password")
        let start = ContinuousClock.now
        async let served: Int = listener.executeThenClose { inbound in
            var delivered = 0
            for try await connection in inbound {
                let server = try CredSSPServer(certificateChain: chain, privateKey: key,
                                               inner: GSSAcceptorAuthenticator(credential: acceptor), policy: policy)
                let received = try await connection.executeThenClose { input, output in
                    try await server.run(inbound: input, outbound: output)
                }
                guard received.user == "bench" else { throw BenchError("wrong credentials delivered") }
                delivered += 1
                if delivered == count { break }
            }
            return delivered
        }
        for _ in 0..<count {
            let client = try CredSSPClient(
                credentials: CredSSPCredentials(domain: credentials.domain, user: credentials.user, password: credentials.password),
                inner: GSSInitiatorAuthenticator(target: target, credential: user), verification: .insecureAcceptAny,
                policy: policy)
            let connection = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: port) { framed($0) }
            try await connection.executeThenClose { input, output in try await client.run(inbound: input, outbound: output) }
        }
        guard try await served == count else { throw BenchError("the server delivered fewer credentials") }
        return rate(count, since: start)
    }

    /// pyspnego's client and server in `credssp_bench.py`; its figure and the TLS version.
    static func pythonExchanges(_ count: Int, peerDirectory: String, host: String, environment: [String: String],
                                ccache: String, realm: String, inMemory: Bool) async throws -> (Figure, String) {
        let process = Process()
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "\(peerDirectory)/credssp_bench.py", "\(count)", host, "TERMSRV",
                             "bench@\(realm)", "bench-password", ccache] + (inMemory ? ["memory"] : [])
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            .merging(["PYTHONDONTWRITEBYTECODE": "1"]) { $1 }
        process.standardOutput = output
        try process.run()
        let data = await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: output.fileHandleForReading.readDataToEndOfFile()) }
        }
        process.waitUntilExit()
        let line = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let fields = line.split(separator: " ")
        guard fields.count == 8, fields[0] == "EXCHANGES", let exchanges = Double(fields[1]), let seconds = Double(fields[3]),
              let cpu = Double(fields[7])
        else {
            throw BenchError("credssp_bench.py: \(line)")
        }
        return (Figure(rate: exchanges / seconds, cpuMilliseconds: cpu * 1000 / exchanges), String(fields[5]))
    }

    static func framed(_ channel: any Channel) -> EventLoopFuture<NIOAsyncChannel<ByteBuffer, ByteBuffer>> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LengthFieldBasedFrameDecoder(lengthFieldBitLength: .fourBytes)))
            try channel.pipeline.syncOperations.addHandler(LengthFieldPrepender(lengthFieldBitLength: .fourBytes))
            return try NIOAsyncChannel(wrappingChannelSynchronously: channel)
        }
    }

    /// A self-signed RSA-2048 certificate made with `openssl` in `directory`.
    static func certificate(in directory: String) throws -> ([NIOSSLCertificate], NIOSSLPrivateKey) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=hostb.test",
                             "-keyout", "\(directory)/credssp.key", "-out", "\(directory)/credssp.pem"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw BenchError("openssl req failed") }
        return (try NIOSSLCertificate.fromPEMFile("\(directory)/credssp.pem"),
                try NIOSSLPrivateKey(file: "\(directory)/credssp.key", format: .pem))
    }
}
