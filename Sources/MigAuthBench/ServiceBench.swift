import Foundation
import GSS
import KerberosCrypto
import MigrationService
import NIOCore
import NIOPosix
import TestRealm

/// `migauth-bench service`: Kerberos handshake latency of the migration service over loopback
/// (p50/p99), and the protected stream's throughput at 1 MiB chunks against clear TCP and against
/// in-process wrap+unwrap of the same sizes.
enum ServiceBench {
    static func run(_ arguments: [String]) async throws {
        let (handshakes, megabytes, rounds) = try parse(arguments)
        let loadBefore = loadAverage()
        try await TestRealm.withRealm { realm in
            let lab = try await BenchRealm.prepare(realm)
            let fqdn = BenchRealm.fqdn, keytab = lab.keytab, ccache = lab.ccache
            let work = realm.directory + "/service-bench"
            let destination = MigrationDestination(configuration: lab.destinationConfiguration(vmDirectory: work + "/dst"))
            let endpoint = try await destination.start(on: ServiceEndpoint(address: "127.0.0.12", port: 0))
            let target = MigrationTarget(fqdn: fqdn, endpoint: endpoint, realm: realm.name)
            let source = try MigrationSource(localAddress: "127.0.0.11", vmDirectory: work + "/src")
            let credential = try GSSCredential.acquire(store: GSSCredentialStore(ccache: ccache))

            // Handshake: connect, hello, Kerberos (mutual), authorization, sealed result.
            let latencies = try await handshakeLatencies(handshakes, from: source, to: target, credential: credential)
            func percentile(_ p: Double) -> Double { latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }

            // Protected stream: a VM of `megabytes` MiB, TCP/IP option (no compression), 1 MiB chunks.
            let size = megabytes << 20
            let bytes = halfRandom(size)
            // Each move: VM files on the realm's disk directory, then (if /dev/shm exists) on tmpfs, where
            // fsync and write-back cost nothing: the second figure is the protected stream itself.
            func moves(_ option: PerformanceOption, in directory: String, suite: ProtectionSuite = .aes256GCM, channels: Int = 1,
                       versions: ClosedRange<UInt16>? = nil) async throws -> Double {
                try await bestMoveRate(option, in: directory, suite: suite, channels: channels, versions: versions, lab: lab,
                                       realm: realm.name, credential: credential, bytes: bytes, rounds: rounds)
            }
            let protectedDisk = try await moves(.tcpIP, in: work, suite: .gssWrap)
            let protectedDisk2 = try await moves(.tcpIP, in: work)
            let compressed = try await moves(.compression, in: work, suite: .gssWrap, versions: 1...1)
            let compressed2 = try await moves(.compression, in: work)
            let shm = "/dev/shm/migauth-bench-\(getpid())"
            var protectedMemory: Double? = nil
            var memory2: [String: Double] = [:]
            if FileManager.default.fileExists(atPath: "/dev/shm") {
                defer { try? FileManager.default.removeItem(atPath: shm) }
                protectedMemory = try await moves(.tcpIP, in: shm, suite: .gssWrap)
                memory2["tcp"] = try await moves(.tcpIP, in: shm)
                memory2["compression"] = try await moves(.compression, in: shm)
                memory2["zlib"] = try await moves(.compression, in: shm, suite: .gssWrap, versions: 1...1)
                memory2["smb2"] = try await moves(.smb, in: shm, channels: 2)
                memory2["smb4"] = try await moves(.smb, in: shm, channels: 4)
            }
            let smbDisk2 = try await moves(.smb, in: work, channels: 2)
            let smbDisk4 = try await moves(.smb, in: work, channels: 4)
            let gcm = try gcmSealOpen(bytes: size)
            func mb(_ v: Double?) -> String { v.map { String(format: "%.0f", $0) } ?? "n/a" }
            await destination.stop()
            let clear = try await clearTCP(bytes: size)
            let inProcess = try wrapUnwrap(service: "\(MigrationServiceNames.migrationService)@\(fqdn)", ccache: ccache,
                                           keytab: "FILE:" + keytab, bytes: size)
            print("""
            | figure | value |
            |---|---|
            | handshake (connect + Kerberos mutual + authorization), p50 | \(String(format: "%.2f", percentile(0.5) * 1000)) ms |
            | handshake, p99 | \(String(format: "%.2f", percentile(0.99) * 1000)) ms |
            | suite 1 (RFC 4121 wrap): protected move, TCP/IP option, 1 MiB chunks (protocol 2: no file digest; fsync to disk) | \(String(format: "%.0f", protectedDisk)) MB/s |
            | suite 1: protected move, TCP/IP option, VM files on tmpfs (no disk write-back) | \(protectedMemory.map { String(format: "%.0f", $0) } ?? "n/a") MB/s |
            | suite 1, protocol 1: protected move, Compression option (zlib level 1; the data is half random, half zeros), disk / tmpfs | \(String(format: "%.0f", compressed)) / \(mb(memory2["zlib"])) MB/s |
            | suite 2 (AES-256-GCM): protected move, TCP/IP, disk | \(mb(protectedDisk2)) MB/s |
            | suite 2: protected move, TCP/IP, tmpfs | \(mb(memory2["tcp"])) MB/s |
            | suite 2: protected move, Compression (zstd level 1, raw when < 3 % saved), disk / tmpfs | \(mb(compressed2)) / \(mb(memory2["compression"])) MB/s |
            | suite 2: protected move, SMB 2 / 4 channels, disk | \(mb(smbDisk2)) / \(mb(smbDisk4)) MB/s |
            | suite 2: protected move, SMB 2 / 4 channels, tmpfs | \(mb(memory2["smb2"])) / \(mb(memory2["smb4"])) MB/s |
            | in-process AES-256-GCM seal + open in place, 1 MiB | \(mb(gcm)) MB/s |
            | clear TCP over loopback, 1 MiB writes | \(String(format: "%.0f", clear)) MB/s |
            | in-process wrapInPlace + unwrapInPlace, 1 MiB | \(String(format: "%.0f", inProcess)) MB/s |
            """)
            printRatios(gcm: gcm, protectedMemory: protectedMemory, protectedDisk2: protectedDisk2, compressed2: compressed2,
                        memory2: memory2)
            print("(\(handshakes) handshakes, \(megabytes) MiB per move, best of \(rounds) moves; load average before: \(loadBefore), after: \(loadAverage()))")
        }
    }

    /// The best rate (MB/s) of `rounds` protected moves of `bytes` from 127.0.0.11 to a destination on 127.0.0.12,
    /// VM files under `directory`.
    static func bestMoveRate(_ option: PerformanceOption, in directory: String, suite: ProtectionSuite, channels: Int,
                             versions: ClosedRange<UInt16>?, lab: BenchRealm, realm: String, credential: GSSCredential,
                             bytes: [UInt8], rounds: Int) async throws -> Double {
        let clock = ContinuousClock()
        let destination = MigrationDestination(configuration: lab.destinationConfiguration(vmDirectory: directory + "/dst"))
        let endpoint = try await destination.start(on: ServiceEndpoint(address: "127.0.0.12", port: 0))
        let target = MigrationTarget(fqdn: BenchRealm.fqdn, endpoint: endpoint, realm: realm)
        let source = try MigrationSource(localAddress: "127.0.0.11", vmDirectory: directory + "/src")
        var best = 0.0
        for round in 0..<rounds {
            let vm = "bench-\(round)-\(option)-\(suite.rawValue)-\(channels)"
            try VMStore(directory: directory + "/src").create(vm, contents: bytes)
            let start = clock.now
            var options = MoveOptions(performance: option, channels: channels, chunkSize: 1 << 20)
            options.suites = [suite]
            if let versions { options.protocolVersions = versions }  // 1...1: protocol 1, zlib Compression
            _ = try await source.move(vm: vm, to: target, credential: credential, options: options)
            best = max(best, Double(bytes.count) / seconds(clock.now - start) / 1e6)
            try? FileManager.default.removeItem(atPath: VMStore(directory: directory + "/dst").path(of: vm))
        }
        await destination.stop()
        return best
    }

    /// `size` bytes, half random and half zero in 64 KiB blocks: compression has something to gain and something not.
    static func halfRandom(_ size: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: size)
        var g = SystemRandomNumberGenerator()
        for i in stride(from: 0, to: size, by: 8) where (i >> 16) % 2 == 0 {
            bytes.withUnsafeMutableBytes { $0.storeBytes(of: g.next(), toByteOffset: i, as: UInt64.self) }
        }
        return bytes
    }

    /// `--handshakes N --megabytes N --rounds N`, with their defaults.
    static func parse(_ arguments: [String]) throws -> (handshakes: Int, megabytes: Int, rounds: Int) {
        var handshakes = 300
        var megabytes = 64
        var rounds = 3
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "--handshakes": handshakes = Int(iterator.next() ?? "") ?? handshakes
            case "--megabytes": megabytes = Int(iterator.next() ?? "") ?? megabytes
            case "--rounds": rounds = max(1, Int(iterator.next() ?? "") ?? rounds)
            default: throw BenchError("unknown option \(argument)")
            }
        }
        return (handshakes, megabytes, rounds)
    }

    /// The latencies, sorted, of `count` handshakes (connect, hello, Kerberos mutual, authorization, sealed
    /// result), after one not counted.
    static func handshakeLatencies(_ count: Int, from source: MigrationSource, to target: MigrationTarget,
                                   credential: GSSCredential) async throws -> [Double] {
        _ = try await source.checkConnection(to: target, credential: credential)
        var latencies: [Double] = []
        let clock = ContinuousClock()
        for _ in 0..<count {
            let start = clock.now
            _ = try await source.checkConnection(to: target, credential: credential)
            latencies.append(seconds(clock.now - start))
        }
        return latencies.sorted()
    }

    /// The protected stream's rates against in-process GCM and against each other.
    static func printRatios(gcm: Double, protectedMemory: Double?, protectedDisk2: Double, compressed2: Double,
                            memory2: [String: Double]) {
        func ratio(_ a: Double?, _ b: Double?) -> String {
            guard let a, let b, b > 0 else { return "n/a" }
            return String(format: "%.2f", a / b)
        }
        print("""
        ratios: suite 2 TCP/IP tmpfs / in-process GCM = \(ratio(memory2["tcp"], gcm)); disk / GCM = \(ratio(protectedDisk2, gcm)); \
        SMB 4 tmpfs / GCM = \(ratio(memory2["smb4"], gcm)); Compression / TCP/IP (suite 2) disk = \(ratio(compressed2, protectedDisk2)), \
        tmpfs = \(ratio(memory2["compression"], memory2["tcp"])); suite 2 / suite 1 TCP/IP tmpfs = \(ratio(memory2["tcp"], protectedMemory))
        """)
    }

    /// AES-256-GCM seal + open in place of 1 MiB messages (KerberosCrypto's OpenSSL EVP), counter nonces.
    /// `/proc/loadavg`'s first three fields (the machine is shared: figures depend on it).
    static func loadAverage() -> String {
        guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return "n/a" }
        return text.split(separator: " ").prefix(3).joined(separator: " ")
    }

    static func gcmSealOpen(bytes: Int) throws -> Double {
        var key = [UInt8](repeating: 0, count: 32)
        var g = SystemRandomNumberGenerator()
        for i in key.indices { key[i] = UInt8.random(in: 0...255, using: &g) }
        let sealer = try AES256GCM(key: key, direction: .seal)
        let opener = try AES256GCM(key: key, direction: .open)
        var data = [UInt8](repeating: 7, count: 1 << 20)
        var tag = [UInt8](repeating: 0, count: 16)
        let aad = [UInt8](repeating: 1, count: 13)
        var nonce = [UInt8](repeating: 0, count: 12)
        let rounds = max(bytes >> 20, 1)
        let clock = ContinuousClock()
        let start = clock.now
        for n in 0..<rounds {
            nonce[11] = UInt8(n & 0xFF); nonce[10] = UInt8((n >> 8) & 0xFF)
            try data.withUnsafeMutableBytes { d in
                try nonce.withUnsafeBytes { nn in
                    try aad.withUnsafeBytes { a in
                        try tag.withUnsafeMutableBytes { t in try sealer.seal(d, nonce: nn, aad: a, tag: t) }
                        try tag.withUnsafeBytes { t in try opener.open(d, nonce: nn, aad: a, tag: t) }
                    }
                }
            }
        }
        return Double(rounds << 20) / seconds(clock.now - start) / 1e6
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    /// Sends `bytes` in 1 MiB writes over loopback TCP to a reader that counts them.
    static func clearTCP(bytes: Int) async throws -> Double {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.12", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        let port = server.channel.localAddress?.port ?? 0
        let received = Task {
            try await server.executeThenClose { inbound in
                for try await child in inbound {
                    return try await child.executeThenClose { input, _ in
                        var n = 0
                        for try await b in input {
                            n += b.readableBytes
                            if n >= bytes { break }
                        }
                        return n
                    }
                }
                return 0
            }
        }
        let clock = ContinuousClock()
        let start = clock.now
        let client = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.12", port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        let chunk = ByteBuffer(repeating: 7, count: 1 << 20)
        // The connection stays open until the receiver has everything: closing it right after the last `write`
        // returned dropped what was still queued (the rate was once computed over 45 MB of 1 GiB).
        let got = try await client.executeThenClose { _, output in
            for _ in 0..<(bytes >> 20) { try await output.write(chunk) }
            return try await received.value
        }
        let elapsed = clock.now - start
        guard got >= bytes else { throw BenchError("clear TCP: the receiver got \(got) of \(bytes) bytes") }
        let rate = Double(got) / seconds(elapsed) / 1e6
        try? await server.channel.close()
        return rate
    }

    /// wrapInPlace + unwrapInPlace of 1 MiB messages between two in-memory contexts.
    static func wrapUnwrap(service: String, ccache: String, keytab: String, bytes: Int) throws -> Double {
        let target = try GSSName(service, kind: .hostBasedService)
        var initiator = GSSInitiatorContext(target: target, credential: try GSSCredential.acquire(store: GSSCredentialStore(ccache: ccache)))
        var acceptor = GSSAcceptorContext(credential: try GSSCredential.acquire(usage: .accept, store: GSSCredentialStore(keytab: keytab)))
        var token = try initiator.step(nil).token
        while let t = token {
            let reply = try acceptor.step(t)
            guard let r = reply.token else { break }
            token = try initiator.step(r).token
        }
        // One buffer with room for the token's header and trailer around the message, as the
        // service's frames have: each round seals the message where it lies and unseals it there.
        let size = 1 << 20, headerRoom = 64, trailerRoom = 64
        var buffer = [UInt8](repeating: 9, count: headerRoom + size + trailerRoom)
        func roundTrip() throws {
            try buffer.withUnsafeMutableBytes { raw in
                let data = UnsafeMutableRawBufferPointer(rebasing: raw[headerRoom..<(headerRoom + size)])
                let parts = try initiator.wrapInPlace(data)
                guard parts.header.count <= headerRoom, parts.padding.isEmpty, parts.trailer.count <= trailerRoom,
                      let base = raw.baseAddress else { throw BenchError("token does not fit the buffer's room") }
                let start = headerRoom - parts.header.count
                (base + start).copyMemory(from: parts.header, byteCount: parts.header.count)
                (base + headerRoom + size).copyMemory(from: parts.trailer, byteCount: parts.trailer.count)
                let token = UnsafeMutableRawBufferPointer(rebasing: raw[start..<(headerRoom + size + parts.trailer.count)])
                let plain = try acceptor.unwrapInPlace(token)
                guard plain.range == (headerRoom - start)..<(headerRoom - start + size) else {
                    throw BenchError("the plaintext is not where it was sealed")
                }
            }
        }
        try roundTrip()
        guard buffer[headerRoom..<(headerRoom + size)].allSatisfy({ $0 == 9 }) else { throw BenchError("round trip changed the data") }
        let clock = ContinuousClock()
        let start = clock.now
        for _ in 0..<(bytes >> 20) { try roundTrip() }
        return Double(bytes) / seconds(clock.now - start) / 1e6
    }
}
