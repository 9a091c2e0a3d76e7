import Crypto
import Foundation
import GSS
@testable import MigrationService
import NIOCore
import Testing
import WindowsStatus

/// The stream's integrity without serial passes (protocol 2: no file digest, chunks that tile the file
/// exactly once) and the protection policy that refuses protocol 1 and suite 1.
@Suite("Stream integrity and protection policy", .serialized, .timeLimit(.minutes(3)))
struct StreamTests {
    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    @Test("protocol 2 moves without a file digest (report has none); protocol 1 still offers and reports the SHA-256")
    func digestByVersion() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination()
        let target = try lab.target(destination)
        let credential = try await lab.userCredential()
        // Protocol 2, SMB over 3 channels with 64 KiB chunks: chunk k on channel k mod 3, the last one short.
        let v2 = try lab.createVM("vm-v2", size: 20 * 65536 + 999)
        let report2 = try await lab.source.move(vm: "vm-v2", to: target, credential: credential,
                                                options: MoveOptions(performance: .smb, channels: 3, chunkSize: 65536))
        #expect(report2.sha256.isEmpty)
        #expect(report2.bytes == UInt64(v2.count))
        // Protocol 1 (suite 1): the offer carries the file's SHA-256, verified at the destination and reported.
        let v1 = try lab.createVM("vm-v1", size: 7 * 65536 + 5)
        var options = MoveOptions(performance: .compression, chunkSize: 65536)
        options.protocolVersions = 1...1
        let report1 = try await lab.source.move(vm: "vm-v1", to: target, credential: credential, options: options)
        #expect(report1.sha256 == Self.hex(Array(SHA256.hash(data: v1))))
        await destination.stop()
        let arrived2 = lab.contents(lab.destinationVMs, "vm-v2") == v2
        let arrived1 = lab.contents(lab.destinationVMs, "vm-v1") == v1
        #expect(arrived2)
        #expect(arrived1)
    }

    @Test("protocol 2: a chunk that is not the next of its channel's schedule (in bounds, in sequence) is refused, nothing registered")
    func untiledChunkRefused() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination()
        // Chunk 0 at offset 0, then sequence 1 again at offset 0 (it would overwrite chunk 0 and leave a hole).
        let error = try await FaultTests.offered(lab, destination, vm: "vm-tile", size: 3 * 65536) { conn throws(MigrationServiceError) -> MigrationServiceError? in
            try await conn.write(FaultTests.chunkFrame(conn, sequence: 0))
            var plain = ByteBuffer()
            WireMessage.chunk(ChunkHeader(sequence: 1, offset: 0, length: 65536, flags: 0),
                              ByteBuffer(repeating: 1, count: 65536)).encode(into: &plain)
            try await conn.write(conn.sealedFrame(&plain))
            do throws(MigrationServiceError) { _ = try await conn.receive(); return nil } catch { return error }
        }
        #expect(error?.status == .illegalMessage, "\(String(describing: error))")
        #expect(await FaultTests.failure(of: "vm-tile", destination) == .illegalMessage)
        // A short chunk that is not the file's last.
        let short = try await FaultTests.offered(lab, destination, vm: "vm-short", size: 3 * 65536) { conn throws(MigrationServiceError) -> MigrationServiceError? in
            var plain = ByteBuffer()
            WireMessage.chunk(ChunkHeader(sequence: 0, offset: 0, length: 1000, flags: 0),
                              ByteBuffer(repeating: 1, count: 1000)).encode(into: &plain)
            try await conn.write(conn.sealedFrame(&plain))
            do throws(MigrationServiceError) { _ = try await conn.receive(); return nil } catch { return error }
        }
        #expect(short?.status == .illegalMessage, "\(String(describing: short))")
        await destination.stop()
        #expect(!lab.destinationVMs.contains("vm-tile"))
        #expect(!lab.destinationVMs.contains("vm-short"))
        #expect(lab.destinationVMs.stagingFiles().isEmpty)
    }

    @Test("a destination with the AEAD-only policy refuses protocol 1 and suite 1 before authenticating, and takes suite 2")
    func aeadOnlyDestination() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        var configuration = lab.destinationConfiguration()
        configuration.protection = .aeadOnly
        let destination = try await lab.startDestination(configuration)
        let target = try lab.target(destination)
        let credential = try await lab.userCredential()
        _ = try lab.createVM("vm-pol", size: 5 * 65536)
        // A version-1-only source.
        var v1 = MoveOptions(performance: .tcpIP, chunkSize: 65536)
        v1.protocolVersions = 1...1
        let old = await #expect(throws: MigrationServiceError.self) {
            try await lab.source.move(vm: "vm-pol", to: target, credential: credential, options: v1)
        }
        #expect(old?.status == .revisionMismatch, "\(String(describing: old))")
        // A suite-1-only source on protocol 2.
        var wrap = MoveOptions(performance: .tcpIP, chunkSize: 65536)
        wrap.suites = [.gssWrap]
        let suite1 = await #expect(throws: MigrationServiceError.self) {
            try await lab.source.move(vm: "vm-pol", to: target, credential: credential, options: wrap)
        }
        #expect(suite1?.status == .algorithmMismatch, "\(String(describing: suite1))")
        #expect(lab.sourceVMs.contains("vm-pol"))
        // No handshake got as far as a ticket check: nothing authenticated, nothing offered.
        #expect(!(await destination.events()).contains { if case .offered = $0 { true } else { false } })
        // The default source negotiates suite 2 and moves.
        _ = try await lab.source.move(vm: "vm-pol", to: target, credential: credential,
                                      options: MoveOptions(performance: .tcpIP, chunkSize: 65536))
        await destination.stop()
        #expect(lab.destinationVMs.contains("vm-pol"))
    }

    @Test("a source restricted to the AEAD-only policy refuses a version-1-only destination")
    func aeadOnlySource() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination()
        destination.setProtocol(SuiteTests.settings(1...1, [.gssWrap]))
        _ = try lab.createVM("vm-pol2", size: 65536)
        let options = try MoveOptions(performance: .tcpIP, chunkSize: 65536).restricted(to: .aeadOnly)
        #expect(options.protocolVersions == 2...2)
        #expect(options.suites == [.aes256GCM])
        let error = await #expect(throws: MigrationServiceError.self) {
            try await lab.source.move(vm: "vm-pol2", to: lab.target(destination), credential: lab.userCredential(), options: options)
        }
        #expect(error?.status == .revisionMismatch, "\(String(describing: error))")
        await destination.stop()
        #expect(lab.sourceVMs.contains("vm-pol2"))
        #expect(!lab.destinationVMs.contains("vm-pol2"))
    }

    @Test("host.json's protection key: read, saved, handed to the destination; bad values refused on load")
    func hostConfigurationProtection() throws {
        let directory = NSTemporaryDirectory() + "hostconf-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let head = """
        {"name": "TestServer02", "fqdn": "b.delegation.test", "address": "127.0.0.12", "realm": "DELEGATION.TEST",
         "keytab": "/k", "ccacheDirectory": "/c", "vmDirectory": "/v"
        """
        try (head + "}").write(toFile: directory + "/plain.json", atomically: true, encoding: .utf8)
        #expect(try HostConfiguration.load(directory + "/plain.json").destinationConfiguration.protection == .default)
        try (head + #", "protection": {"minimumProtocolVersion": 2, "suites": [2]}}"#)
            .write(toFile: directory + "/strict.json", atomically: true, encoding: .utf8)
        let strict = try HostConfiguration.load(directory + "/strict.json")
        #expect(strict.protection == .aeadOnly)
        #expect(strict.destinationConfiguration.protection == .aeadOnly)
        try strict.save(directory + "/copy.json")
        #expect(try HostConfiguration.load(directory + "/copy.json") == strict)
        for (text, expected) in [(#", "protection": {"minimumProtocolVersion": 3}}"#, "protection.minimumProtocolVersion"),
                                 (#", "protection": {"suites": []}}"#, "protection.suites")] {
            try (head + text).write(toFile: directory + "/bad.json", atomically: true, encoding: .utf8)
            let error = #expect(throws: MigrationServiceError.self) { try HostConfiguration.load(directory + "/bad.json") }
            #expect(error?.status == .invalidArgument)
            #expect(error?.message.contains(expected) == true, "\(String(describing: error?.message))")
        }
    }

    @Test("protection policy: JSON keys, defaults, refusal of bad values, what it leaves to offer")
    func policyConfiguration() throws {
        let decode = { (json: String) throws -> ProtectionPolicy in try JSONDecoder().decode(ProtectionPolicy.self, from: Data(json.utf8)) }
        #expect(try decode("{}") == .default)
        #expect(try decode(#"{"minimumProtocolVersion": 2, "suites": [2]}"#) == .aeadOnly)
        #expect(throws: DecodingError.self) { try decode(#"{"suites": [3]}"#) }
        #expect(ProtectionPolicy(minimumProtocolVersion: 3).problem != nil)
        #expect(ProtectionPolicy(minimumProtocolVersion: 0).problem != nil)
        #expect(ProtectionPolicy(suites: []).problem != nil)
        #expect(ProtectionPolicy(suites: [.gssWrap, .gssWrap]).problem != nil)
        #expect(ProtectionPolicy.aeadOnly.problem == nil)
        // Suite 2 alone rules out protocol 1 even with minimumProtocolVersion 1: version 1 has only suite 1.
        let suite2 = ProtectionPolicy(minimumProtocolVersion: 1, suites: [.aes256GCM])
        #expect(suite2.restrict(ProtocolSettings())?.versions == 2...2)
        #expect(suite2.restrict(ProtocolSettings(versions: 1...1, suites: [.gssWrap])) == nil)
        #expect(ProtectionPolicy(minimumProtocolVersion: 2).restrict(ProtocolSettings())?.suites == ProtectionSuite.preferred)
        #expect(throws: MigrationServiceError.self) {
            var options = MoveOptions()
            options.protocolVersions = 1...1
            _ = try options.restricted(to: .aeadOnly)
        }
    }
}
