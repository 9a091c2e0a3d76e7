import Foundation
import GSS
@testable import MigrationService
import NIOCore
import Testing
import WindowsStatus

/// Hostile or dying peers: the destination refuses them cleanly, keeps nothing half-written and
/// leaks no descriptor; the source keeps its VM whole.
@Suite("Faults", .serialized, .timeLimit(.minutes(2)))
struct FaultTests {
    /// Connects to `destination` from the source address and runs `body` on the raw connection.
    static func raw<R: Sendable>(_ lab: ServiceLab, _ destination: MigrationDestination,
                                 _ body: (FrameConnection) async throws(MigrationServiceError) -> R) async throws -> R {
        try await MigrationSource.connect(from: ServiceLab.sourceAddress, to: lab.target(destination), body)
    }

    /// Connects, authenticates as the lab's user with `suite`, offers `vm` (`size` bytes in 64 KiB
    /// chunks) and waits for ready.
    static func offered<R: Sendable>(_ lab: ServiceLab, _ destination: MigrationDestination, vm: String, size: UInt64,
                                     suite: ProtectionSuite = .aes256GCM,
                                     _ body: (FrameConnection) async throws(MigrationServiceError) -> R) async throws -> R {
        let credential = try await lab.userCredential()
        let target = try lab.target(destination)
        let name = try target.targetName()
        let id = MigrationID.random()
        return try await raw(lab, destination) { conn throws(MigrationServiceError) in
            conn.settings.suites = [suite]
            conn.binding = ConnectionBinding(migrationID: id, channel: 0)
            _ = try await KerberosHandshake.client(conn, purpose: .migration, target: name, credential: credential,
                                                   destinationName: target.fqdn)
            guard conn.negotiation?.suite == suite, (conn.aead != nil) == (suite == .aes256GCM) else {
                throw .protocolViolation("not on \(suite)", stage: .source)
            }
            try await conn.send(.offer(MigrationOffer(id: id, vm: vm, size: size, sha256: [UInt8](repeating: 0, count: 32),
                                                      performance: .tcpIP, channels: 1, chunkSize: 65536)))
            guard case .ready = try await conn.receive() else { throw .protocolViolation("no ready", stage: .source) }
            return try await body(conn)
        }
    }

    /// The sealed frame of chunk `sequence` (64 KiB of `fill`).
    static func chunkFrame(_ conn: FrameConnection, sequence: UInt32, fill: UInt8 = 7) throws(MigrationServiceError) -> [ByteBuffer] {
        var plain = ByteBuffer()
        WireMessage.chunk(ChunkHeader(sequence: sequence, offset: UInt64(sequence) * 65536, length: 65536, flags: 0),
                          ByteBuffer(repeating: fill, count: 65536)).encode(into: &plain)
        return try conn.sealedFrame(&plain)
    }

    /// Waits (at most 10 s) for the destination's `failed` event of `vm` and returns its status; nil
    /// when none came, so a check on it can fail instead of hanging.
    static func failure(of vm: String, _ destination: MigrationDestination) async -> WindowsStatus? {
        for _ in 0..<200 {
            for case .failed(vm, let status, _) in await destination.events() { return status }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return nil
    }

    /// After `destination.stop()`: nothing registered or staged, no descriptor left on its files or its
    /// address and port. Other suites of this process may take the freed port at once (as a listener or as
    /// a connection's local port), so the check matches address and port and waits a while for a socket on
    /// them to go; a descriptor the destination leaked stays, and the check fails.
    static func expectClean(_ lab: ServiceLab, _ endpoint: ServiceEndpoint, vm: String) async {
        #expect(!lab.destinationVMs.contains(vm))
        #expect(lab.destinationVMs.stagingFiles().isEmpty)
        #expect(openFiles(under: lab.directory).isEmpty, "\(openFiles(under: lab.directory))")
        var open = openSockets(endpoint)
        for _ in 0..<50 where open != 0 {
            try? await Task.sleep(for: .milliseconds(100))
            open = openSockets(endpoint)
        }
        #expect(open == 0, "sockets of this process on \(endpoint) 5 s after the destination stopped")
    }

    /// The error the destination answers to `frames` (written raw right after connecting).
    static func answer(to frames: [UInt8], _ lab: ServiceLab, _ destination: MigrationDestination) async throws -> MigrationServiceError? {
        try await raw(lab, destination) { conn throws(MigrationServiceError) -> MigrationServiceError? in
            try await conn.write([ByteBuffer(bytes: frames)])
            do throws(MigrationServiceError) {
                _ = try await conn.receive()
                return nil
            } catch {
                return error
            }
        }
    }

    @Test("garbage, oversized and zero-length frames are refused with SEC_E_ILLEGAL_MESSAGE")
    func garbage() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination()
        let endpoint = try requireEndpoint(destination)
        let unknownKind = try await Self.answer(to: [0, 0, 0, 4, 0x77, 1, 2, 3], lab, destination)
        #expect(unknownKind?.status == .illegalMessage)
        #expect(unknownKind?.stage == .destination)
        #expect(unknownKind?.detail.contains("unknown message kind 0x77") == true, "\(String(describing: unknownKind))")
        let badMagic = try await Self.answer(to: [0, 0, 0, 11, 1, 0x58, 0x58, 0x58, 0x58, 0, 1, 0, 1, 1, 1], lab, destination)
        #expect(badMagic?.detail.contains("bad magic") == true)
        let oversized = try await Self.answer(to: [0x7F, 0xFF, 0xFF, 0xFF, 1], lab, destination)
        #expect(oversized?.status == .illegalMessage)
        #expect(oversized?.detail.contains("frame length 2147483647") == true, "\(String(describing: oversized))")
        let empty = try await Self.answer(to: [0, 0, 0, 0], lab, destination)
        #expect(empty?.status == .illegalMessage)
        #expect(openSockets(endpoint) >= 1, "the listener itself is visible to the check")
        await destination.stop()
        await Self.expectClean(lab, endpoint, vm: "none")
    }

    @Test("a garbage context token is refused with SEC_E_INVALID_TOKEN (0x80090308), a token of an unknown mechanism with SEC_E_SECPKG_NOT_FOUND (0x80090305)",
          arguments: [
              // Bytes that are no GSS token at all.
              ([UInt8]([0xDE, 0xAD, 0xBE, 0xEF, 0x00, 0x01, 0x02, 0x03]), WindowsStatus.invalidToken),
              // GSS framing (0x60) around a mechanism OID (1.2.3.4) nobody offers.
              ([UInt8]([0x60, 0x09, 0x06, 0x03, 0x2A, 0x03, 0x04, 0xDE, 0xAD, 0xBE, 0xEF]), WindowsStatus.packageNotFound),
          ])
    func garbageContextToken(token: [UInt8], expected: WindowsStatus) async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination()
        let endpoint = try requireEndpoint(destination)
        let error = try await Self.raw(lab, destination) { conn throws(MigrationServiceError) -> MigrationServiceError? in
            try await conn.sendClear(.hello(minVersion: 1, maxVersion: 1, purpose: .migration, authentication: .kerberos))
            guard case .helloAck = try await conn.receive() else { throw .protocolViolation("no helloAck", stage: .source) }
            try await conn.sendClear(.token(token))
            do throws(MigrationServiceError) {
                while true { _ = try await conn.receive() }  // a KRB-ERROR token may come first
            } catch { return error }
        }
        let events = await destination.events()
        await destination.stop()
        #expect(error?.status == expected, "\(String(describing: error))")
        #expect(error?.kind == .authentication)
        #expect(error?.stage == .destination)
        #expect(error?.detail.contains("gss_accept_sec_context") == true, "\(String(describing: error))")
        #expect(events == [.authenticationFailed(status: expected)])
        await Self.expectClean(lab, endpoint, vm: "none")
    }

    @Test("a silent peer is closed when it has not authenticated within the handshake timeout")
    func silentPeer() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = MigrationDestination(configuration: lab.destinationConfiguration(),
                                               handshakeTimeout: .milliseconds(300))
        let endpoint = try await destination.start(on: ServiceEndpoint(address: ServiceLab.destinationAddress, port: 0))
        let error = try await Self.raw(lab, destination) { conn throws(MigrationServiceError) -> MigrationServiceError? in
            do throws(MigrationServiceError) { _ = try await conn.receive(); return nil } catch { return error }
        }
        #expect(error?.kind == .connectionLost, "\(String(describing: error))")
        await destination.stop()
        await Self.expectClean(lab, endpoint, vm: "none")
    }

    @Test("a hello with another protocol version is refused with ERROR_REVISION_MISMATCH")
    func wrongVersion() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination()
        let endpoint = try requireEndpoint(destination)
        let error = try await Self.raw(lab, destination) { conn throws(MigrationServiceError) -> MigrationServiceError? in
            try await conn.sendClear(.hello(minVersion: 3, maxVersion: 4, purpose: .migration, authentication: .kerberos))
            do throws(MigrationServiceError) { _ = try await conn.receive(); return nil } catch { return error }
        }
        #expect(error?.status == .revisionMismatch)
        #expect(error?.detail.contains("client speaks 3…4, server speaks 1…2") == true)
        await destination.stop()
        await Self.expectClean(lab, endpoint, vm: "none")
    }

    @Test("a truncated frame and a peer closing mid-handshake leave the destination serving and clean")
    func truncatedAndMidHandshake() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination()
        let endpoint = try requireEndpoint(destination)
        try await Self.raw(lab, destination) { conn throws(MigrationServiceError) in
            try await conn.write([ByteBuffer(bytes: [0, 0, 0, 100, 1, 2, 3])])  // then closes
        }
        try await Self.raw(lab, destination) { conn throws(MigrationServiceError) in
            try await conn.sendClear(.hello(minVersion: 1, maxVersion: 1, purpose: .migration, authentication: .kerberos))
            _ = try await conn.receive()  // hello-ack; then close before any token
        }
        // Still serving.
        let bytes = try lab.createVM("vm-after", size: 100_000)
        _ = try await lab.source.move(vm: "vm-after", to: lab.target(destination), credential: lab.userCredential())
        await destination.stop()
        let arrived = lab.contents(lab.destinationVMs, "vm-after") == bytes
        #expect(arrived)
        await Self.expectClean(lab, endpoint, vm: "none")
    }

    @Test("a replayed sealed chunk is rejected (SEC_E_OUT_OF_SEQUENCE); nothing is registered", arguments: ProtectionSuite.allCases)
    func replayed(suite: ProtectionSuite) async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination()
        let endpoint = try requireEndpoint(destination)
        let answer = try await Self.offered(lab, destination, vm: "vm-replay", size: 3 * 65536, suite: suite) { conn throws(MigrationServiceError) -> MigrationServiceError? in
            let first = try Self.chunkFrame(conn, sequence: 0)
            try await conn.write(first)
            try await conn.write(first)  // the same bytes again
            do throws(MigrationServiceError) { _ = try await conn.receive(); return nil } catch { return error }
        }
        #expect(answer?.status == .outOfSequence, "\(String(describing: answer))")
        #expect(await Self.failure(of: "vm-replay", destination) == .outOfSequence)
        await destination.stop()
        await Self.expectClean(lab, endpoint, vm: "vm-replay")
    }

    @Test("reordered sealed chunks are rejected (SEC_E_OUT_OF_SEQUENCE); nothing is registered", arguments: ProtectionSuite.allCases)
    func reordered(suite: ProtectionSuite) async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination()
        let endpoint = try requireEndpoint(destination)
        let answer = try await Self.offered(lab, destination, vm: "vm-reorder", size: 3 * 65536, suite: suite) { conn throws(MigrationServiceError) -> MigrationServiceError? in
            let first = try Self.chunkFrame(conn, sequence: 0)
            let second = try Self.chunkFrame(conn, sequence: 1)
            try await conn.write(second)
            try await conn.write(first)
            do throws(MigrationServiceError) { _ = try await conn.receive(); return nil } catch { return error }
        }
        #expect(answer?.status == .outOfSequence, "\(String(describing: answer))")
        await destination.stop()
        await Self.expectClean(lab, endpoint, vm: "vm-reorder")
    }

    @Test("an altered sealed chunk is rejected (SEC_E_MESSAGE_ALTERED); nothing is registered", arguments: ProtectionSuite.allCases)
    func altered(suite: ProtectionSuite) async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination()
        let endpoint = try requireEndpoint(destination)
        let answer = try await Self.offered(lab, destination, vm: "vm-altered", size: 3 * 65536, suite: suite) { conn throws(MigrationServiceError) -> MigrationServiceError? in
            var frame = try Self.chunkFrame(conn, sequence: 0)
            let index = frame[1].readerIndex + 1000
            frame[1].setInteger((frame[1].getInteger(at: index, as: UInt8.self) ?? 0) ^ 0x01, at: index)
            try await conn.write(frame)
            do throws(MigrationServiceError) { _ = try await conn.receive(); return nil } catch { return error }
        }
        #expect(answer?.status == .messageAltered, "\(String(describing: answer))")
        #expect(answer?.kind == .integrity)
        await destination.stop()
        await Self.expectClean(lab, endpoint, vm: "vm-altered")
    }

    @Test("a management hello on the migration port is refused")
    func wrongPurpose() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination()
        let error = try await Self.raw(lab, destination) { conn throws(MigrationServiceError) -> MigrationServiceError? in
            try await conn.sendClear(.hello(minVersion: 1, maxVersion: 1, purpose: .management, authentication: .kerberos))
            do throws(MigrationServiceError) { _ = try await conn.receive(); return nil } catch { return error }
        }
        await destination.stop()
        #expect(error?.status == .illegalMessage)
        #expect(error?.detail.contains("serves migration, not management") == true, "\(String(describing: error))")
    }

    @Test("a source that closes mid-stream leaves nothing registered and no staging file")
    func sourceClosesMidStream() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination()
        let endpoint = try requireEndpoint(destination)
        try await Self.offered(lab, destination, vm: "vm-cut", size: 3 * 65536) { conn throws(MigrationServiceError) in
            try await conn.write(Self.chunkFrame(conn, sequence: 0))
        }
        #expect(await Self.failure(of: "vm-cut", destination) == .connectionReset)
        await destination.stop()
        await Self.expectClean(lab, endpoint, vm: "vm-cut")
    }

    @Test("a destination that dies mid-stream: the move fails, the VM stays whole on the source")
    func destinationDiesMidStream() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination()
        let endpoint = try requireEndpoint(destination)
        let bytes = try lab.createVM("vm-dies", size: 2 * 1024 * 1024)
        let error = await #expect(throws: MigrationServiceError.self) {
            try await lab.source.move(vm: "vm-dies", to: lab.target(destination), credential: lab.userCredential(),
                                      options: MoveOptions(performance: .tcpIP, chunkSize: 65536, progress: { p in
                                          if p.phase == .transferring, p.bytesSent >= 65536 { await destination.stop() }
                                      }))
        }
        #expect(error?.stage == .source)
        let whole = lab.contents(lab.sourceVMs, "vm-dies") == bytes
        #expect(whole)
        #expect(await Self.failure(of: "vm-dies", destination) != nil, "the destination recorded the failed migration")
        await Self.expectClean(lab, endpoint, vm: "vm-dies")
    }
}

/// Descriptors of this process open on files under `directory`.
func openFiles(under directory: String) -> [String] {
    let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    return fds.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)") }
        .filter { $0.hasPrefix(directory) }
}

/// TCP sockets of this process whose local or remote end is `endpoint`, an IPv4 address (from /proc/net/tcp,
/// where an end reads as the address's four bytes in host order and the port, in hexadecimal).
func openSockets(_ endpoint: ServiceEndpoint) -> Int {
    let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    let inodes = Set(fds.compactMap { fd -> String? in
        guard let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)"),
              link.hasPrefix("socket:[") else { return nil }
        return String(link.dropFirst(8).dropLast())
    })
    let bytes = endpoint.address.split(separator: ".").compactMap { UInt8($0) }
    guard bytes.count == 4 else { return -1 }  // not IPv4: the caller's check fails
    let end = bytes.reversed().map { String(format: "%02X", $0) }.joined() + String(format: ":%04X", endpoint.port)
    let table = readProcFile("/proc/net/tcp")
    return table.split(separator: "\n").dropFirst().filter { line in
        let f = line.split(separator: " ")
        guard f.count > 9 else { return false }
        return (f[1] == end || f[2] == end) && inodes.contains(String(f[9]))
    }.count
}

/// The whole of a /proc file (its size reads as 0, so read until end of file).
func readProcFile(_ path: String) -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return "" }
    defer { close(fd) }
    var data = [UInt8]()
    var block = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = block.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        data.append(contentsOf: block[0..<n])
    }
    return String(decoding: data, as: UTF8.self)
}
