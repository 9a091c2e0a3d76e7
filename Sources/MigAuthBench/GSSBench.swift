import Foundation
import GSS
import TestRealm

/// GSS benchmarks: context establishments per second (in process, cached service ticket) and
/// wrap+unwrap throughput with confidentiality at 64 KiB and 1 MiB, each against the same loop in
/// C (`Benchmarks/c/gss_bench.c`) in the same run and realm.
///
/// Usage: `migauth-bench gss [--c-binary PATH] [--rounds N] [--markdown FILE]`
///        `migauth-bench gss --leak-check N` (every GSS call path N times, for valgrind)
enum GSSBench {
    struct Figures {
        var contextsPerSecond = 0.0
        var wrap64KMBps = 0.0
        var wrap1MMBps = 0.0

        mutating func keepBest(_ other: Figures) {
            contextsPerSecond = max(contextsPerSecond, other.contextsPerSecond)
            wrap64KMBps = max(wrap64KMBps, other.wrap64KMBps)
            wrap1MMBps = max(wrap1MMBps, other.wrap1MMBps)
        }
    }

    static let contexts = 2000
    static let wraps64K = 400
    static let wraps1M = 30

    static func run(_ arguments: [String]) async throws {
        var cBinary: String?
        var rounds = 3
        var markdown: String?
        var leakCheck: Int?
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "--c-binary": cBinary = iterator.next()
            case "--rounds": rounds = Int(iterator.next() ?? "") ?? rounds
            case "--markdown": markdown = iterator.next()
            case "--leak-check": leakCheck = Int(iterator.next() ?? "") ?? 10
            default: throw BenchError("unknown option \(argument)")
            }
        }

        try await TestRealm.withRealm { realm in
            for (key, value) in realm.environment { setenv(key, value, 1) }
            let host = "hostb.test"
            let principal = "Microsoft Virtual System Migration Service/\(host)"
            try await realm.addPrincipal(principal)
            let keytab = try await realm.exportKeytab([principal])
            try await realm.addPrincipal("bench", password: "bench-password")
            let ccache = try await realm.kinit("bench", password: "bench-password")
            let service = "Microsoft Virtual System Migration Service@\(host)"
            if let leakCheck {
                try exerciseAll(iterations: leakCheck, service: service, ccache: ccache, keytab: "FILE:" + keytab,
                                realm: realm.name)
                print("leak check: \(leakCheck) iterations done")
                return
            }

            var swift = Figures()
            var c = Figures()
            var cThread = Figures()
            // Each run gets a fresh replay cache (its cost grows with its size); the order alternates.
            var runs = 0
            func rcache() -> String {
                runs += 1
                return "file2:\(realm.directory)/bench-\(runs).rcache"
            }
            for round in 1...rounds {
                for swiftFirst in [round % 2 == 0, round % 2 != 0] {
                    if swiftFirst {
                        swift.keepBest(try runSwift(service: service, ccache: ccache, keytab: "FILE:" + keytab,
                                                    rcache: rcache()))
                    } else if let cBinary {
                        c.keepBest(try runC(cBinary, service: service, ccache: ccache, keytab: "FILE:" + keytab,
                                            rcache: rcache(), onThread: false, environment: realm.environment))
                        cThread.keepBest(try runC(cBinary, service: service, ccache: ccache, keytab: "FILE:" + keytab,
                                                  rcache: rcache(), onThread: true, environment: realm.environment))
                    }
                }
                print("round \(round)/\(rounds) done")
            }
            let report = table(swift: swift, c: cBinary == nil ? nil : c, cThread: cBinary == nil ? nil : cThread)
            print(report)
            if let markdown { try writeSection(report, to: markdown) }
        }
    }

    static func runSwift(service: String, ccache: String, keytab: String, rcache: String) throws -> Figures {
        let target = try GSSName(service, kind: .hostBasedService)
        let initiatorCredential = try GSSCredential.acquire(store: GSSCredentialStore(ccache: ccache))
        let acceptorCredential = try GSSCredential.acquire(name: target, usage: .accept,
                                                           store: GSSCredentialStore(keytab: keytab, replayCache: rcache))
        func establish(_ initiator: inout GSSInitiatorContext, _ acceptor: inout GSSAcceptorContext) throws {
            initiator = GSSInitiatorContext(target: target, credential: initiatorCredential)
            acceptor = GSSAcceptorContext(credential: acceptorCredential)
            var step = try initiator.step()
            while let token = step.token {
                let reply = try acceptor.step(token)
                if step.isComplete { break }
                step = try initiator.step(reply.token)
            }
            guard initiator.isComplete, acceptor.isComplete else { throw BenchError("context not established") }
        }
        var initiator = GSSInitiatorContext(target: target, credential: initiatorCredential)
        var acceptor = GSSAcceptorContext(credential: acceptorCredential)
        try establish(&initiator, &acceptor)  // warm-up: service ticket into the ccache

        var figures = Figures()
        let clock = ContinuousClock()
        var start = clock.now
        for _ in 0..<contexts { try establish(&initiator, &acceptor) }
        figures.contextsPerSecond = Double(contexts) / seconds(clock.now - start)

        try establish(&initiator, &acceptor)
        for (size, iterations) in [(64 * 1024, wraps64K), (1024 * 1024, wraps1M)] {
            let data = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            start = clock.now
            for _ in 0..<iterations {
                let wrapped = try initiator.wrap(data)
                let plain = try acceptor.unwrap(wrapped)
                guard plain.message.count == size, plain.confidential else { throw BenchError("round trip mismatch") }
            }
            let mbps = Double(size * iterations) / seconds(clock.now - start) / 1e6
            if size == 64 * 1024 { figures.wrap64KMBps = mbps } else { figures.wrap1MMBps = mbps }
        }
        return figures
    }

    /// Every owning path of the GSS module (names, credentials, contexts, per-message calls,
    /// delegation, errors), `iterations` times: run under valgrind to find leaks.
    static func exerciseAll(iterations: Int, service: String, ccache: String, keytab: String, realm: String) throws {
        for i in 0..<iterations {
            let target = try GSSName(service, kind: .hostBasedService)
            let canonical = try target.canonicalized()
            _ = try GSSName(exported: try canonical.export()).isSame(as: canonical)
            _ = target.description
            let user = try GSSCredential.acquire(store: GSSCredentialStore(ccache: ccache))
            _ = try user.inquire()
            let password = try GSSCredential.acquire(name: GSSName(principal: "bench@\(realm)"), password: "bench-password")
            try password.store(into: GSSCredentialStore(ccache: "MEMORY:leak-\(i)"))
            let acceptorCredential = try GSSCredential.acquire(name: target, usage: .accept,
                                                               store: GSSCredentialStore(keytab: keytab))
            var initiator = GSSInitiatorContext(target: target, credential: user,
                                                flags: GSSContextFlags.standard.union(.delegate),
                                                channelBindings: GSSChannelBindings(applicationData: [1, 2, 3]))
            var acceptor = GSSAcceptorContext(credential: acceptorCredential,
                                              channelBindings: GSSChannelBindings(applicationData: [1, 2, 3]))
            var step = try initiator.step()
            while let token = step.token {
                let reply = try acceptor.step(token)
                if step.isComplete { break }
                step = try initiator.step(reply.token)
            }
            _ = try initiator.inquire()
            _ = acceptor.peerName?.description
            if let delegated = acceptor.delegatedCredential {
                try delegated.store(into: GSSCredentialStore(ccache: "MEMORY:deleg-\(i)"))
            }
            let message = Array("leak check \(i)".utf8)
            _ = try acceptor.unwrap(try initiator.wrap(message))
            _ = try initiator.unwrap(try acceptor.wrap(message, encrypt: false))
            try acceptor.verifyMIC(message, mic: try initiator.getMIC(message))
            _ = try initiator.wrapSizeLimit(maximumTokenSize: 65536)
            var data = message
            let parts = try initiator.wrapInPlace(&data)
            var token = parts.header + data + parts.padding + parts.trailer
            _ = try acceptor.unwrapInPlace(&token)
            // Error paths.
            _ = try? acceptor.unwrap([0x05, 0x04, 0x00])
            _ = try? GSSCredential.acquire(store: GSSCredentialStore(ccache: "FILE:/nonexistent/cc"))
            var unknown = GSSInitiatorContext(target: try GSSName(service: "nosuch", host: "absent.test"), credential: user)
            _ = try? unknown.step()
            var badAcceptor = GSSAcceptorContext(credential: acceptorCredential)
            _ = try? badAcceptor.step(Array(repeating: 0x60, count: 40))
            var truncated = GSSAcceptorContext(credential: acceptorCredential)
            var fresh = GSSInitiatorContext(target: target, credential: user)
            if let first = try fresh.step().token { _ = try? truncated.step(Array(first.prefix(first.count / 2))) }
        }
    }

    static func runC(_ binary: String, service: String, ccache: String, keytab: String, rcache: String,
                     onThread: Bool, environment: [String: String]) throws -> Figures {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = [service, ccache, keytab, rcache, "\(contexts)", "\(wraps64K)", "\(wraps1M)"]
            + (onThread ? ["thread"] : [])
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw BenchError("\(binary) exited \(process.terminationStatus)") }
        var figures = Figures()
        for line in output.split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard parts.count == 2, let value = Double(parts[1]) else { continue }
            switch parts[0] {
            case "contexts_per_second": figures.contextsPerSecond = value
            case "wrap_unwrap_64k_MBps": figures.wrap64KMBps = value
            case "wrap_unwrap_1m_MBps": figures.wrap1MMBps = value
            default: break
            }
        }
        return figures
    }

    static func seconds(_ duration: Duration) -> Double {
        let (s, atto) = duration.components
        return Double(s) + Double(atto) / 1e18
    }

    static func table(swift: Figures, c: Figures?, cThread: Figures?) -> String {
        func f(_ value: Double?, _ format: String) -> String { value.map { String(format: format, $0) } ?? "–" }
        func row(_ name: String, _ s: Double, _ c: Double?, _ t: Double?, _ unit: String) -> String {
            "| \(name) | \(f(s, "%.1f")) | \(f(c, "%.1f")) | \(f(c.map { s / $0 }, "%.3f")) | "
                + "\(f(t, "%.1f")) | \(f(t.map { s / $0 }, "%.3f")) | \(unit) |"
        }
        return """
        | measurement | Swift | C (main thread) | Swift/C | C (second thread) | Swift/C (thread) | unit |
        |---|---|---|---|---|---|---|
        \(row("context establishments (init+accept+init, mutual, in process)", swift.contextsPerSecond, c?.contextsPerSecond, cThread?.contextsPerSecond, "contexts/s"))
        \(row("wrap+unwrap, confidentiality, 64 KiB messages", swift.wrap64KMBps, c?.wrap64KMBps, cThread?.wrap64KMBps, "MB/s"))
        \(row("wrap+unwrap, confidentiality, 1 MiB messages", swift.wrap1MMBps, c?.wrap1MMBps, cThread?.wrap1MMBps, "MB/s"))
        """
    }

    /// Prints the table; `--markdown FILE` writes it to FILE for BENCHMARKS.md.
    static func writeSection(_ table: String, to path: String) throws {
        try (table + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
