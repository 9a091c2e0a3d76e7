import Foundation
@testable import MigrationService
import NIOCore
import Testing
import WindowsStatus

/// The Compression option's chunk codec: zstd on protocol 2, zlib on protocol 1, raw when it does not pay.
@Suite("Compression", .serialized, .timeLimit(.minutes(3)))
struct CompressionTests {
    static let chunk = 65536

    /// `count` chunks: even ones random, odd ones zero (half incompressible, half guest pages never touched).
    static func halfRandomHalfZero(chunks count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count * chunk)
        var g = SystemRandomNumberGenerator()
        for i in 0..<bytes.count where (i / chunk) % 2 == 0 { bytes[i] = UInt8.random(in: 0...255, using: &g) }
        return bytes
    }

    /// Encodes every chunk of `data`; returns (flags, encoded size) per chunk and checks the round trip.
    static func roundTrip(_ data: [UInt8], zstd: Bool) throws -> [(flags: UInt8, size: Int)] {
        let compressor = try ChunkCompressor(zstd: zstd)
        let decompressor = try ChunkDecompressor(zstd: zstd, allocator: ByteBufferAllocator())
        var out: [(UInt8, Int)] = []
        for (seq, start) in stride(from: 0, to: data.count, by: chunk).enumerated() {
            let raw = ByteBuffer(bytes: data[start..<min(start + chunk, data.count)])
            var wire = ByteBuffer()
            let flags = try compressor.encode(raw, into: &wire)
            let header = ChunkHeader(sequence: UInt32(seq), offset: UInt64(start), length: UInt32(raw.readableBytes), flags: flags)
            let plain = try decompressor.decode(header, wire)
            #expect(plain == raw, "chunk \(seq) does not round-trip")
            out.append((flags, wire.readableBytes))
        }
        return out
    }

    @Test("protocol 2: zero chunks go as tiny zstd frames, random chunks raw; all round-trip")
    func zstdChunks() throws {
        let chunks = try Self.roundTrip(Self.halfRandomHalfZero(chunks: 8), zstd: true)
        for (i, c) in chunks.enumerated() {
            if i % 2 == 0 {
                #expect(c.flags == 0 && c.size == Self.chunk, "random chunk \(i): \(c)")
            } else {
                #expect(c.flags == ChunkHeader.zstd && c.size < 64, "zero chunk \(i): \(c)")
            }
        }
    }

    @Test("protocol 1: zlib (flag bit 0), random chunks raw")
    func zlibChunks() throws {
        let chunks = try Self.roundTrip(Self.halfRandomHalfZero(chunks: 4), zstd: false)
        #expect(chunks.map(\.flags) == [0, ChunkHeader.compressed, 0, ChunkHeader.compressed])
        #expect(chunks[1].size < 1024)
    }

    @Test("corrupt, oversized (zip bomb) and misflagged zstd chunks are refused with SEC_E_ILLEGAL_MESSAGE")
    func refused() throws {
        let compressor = try ChunkCompressor(zstd: true)
        var frame = ByteBuffer()
        let flags = try compressor.encode(ByteBuffer(repeating: 0, count: 4 * Self.chunk), into: &frame)
        #expect(flags == ChunkHeader.zstd)
        let decoder = try ChunkDecompressor(zstd: true, allocator: ByteBufferAllocator())
        func status(_ header: ChunkHeader, _ data: ByteBuffer) -> WindowsStatus? {
            do throws(MigrationServiceError) { _ = try decoder.decode(header, data); return nil } catch { return error.status }
        }
        // 256 KiB of zeros declared as a 64 KiB chunk: refused before anything is written.
        #expect(status(ChunkHeader(sequence: 0, offset: 0, length: UInt32(Self.chunk), flags: ChunkHeader.zstd), frame) == .illegalMessage)
        // The frame carries zstd's content checksum (frame header descriptor bit 2): a frame whose content
        // checksum is wrong does not decompress.
        #expect(frame.getInteger(at: frame.readerIndex + 4, as: UInt8.self).map { $0 & 0x04 } == 0x04)
        var badChecksum = frame
        let last = badChecksum.writerIndex - 1
        badChecksum.setInteger((badChecksum.getInteger(at: last, as: UInt8.self) ?? 0) ^ 0x01, at: last)
        #expect(status(ChunkHeader(sequence: 0, offset: 0, length: UInt32(4 * Self.chunk), flags: ChunkHeader.zstd), badChecksum) == .illegalMessage)
        // Garbage after a valid frame header.
        var corrupt = frame
        corrupt.setInteger(UInt32(0xDEAD_BEEF), at: corrupt.writerIndex - 4)
        #expect(status(ChunkHeader(sequence: 0, offset: 0, length: UInt32(4 * Self.chunk), flags: ChunkHeader.zstd), corrupt) == .illegalMessage)
        #expect(status(ChunkHeader(sequence: 0, offset: 0, length: 100, flags: ChunkHeader.zstd), ByteBuffer(repeating: 9, count: 100)) == .illegalMessage)
        // Both bits, an unknown bit, and zstd on a protocol-1 connection.
        #expect(status(ChunkHeader(sequence: 0, offset: 0, length: UInt32(4 * Self.chunk), flags: 3), frame) == .illegalMessage)
        #expect(status(ChunkHeader(sequence: 0, offset: 0, length: UInt32(4 * Self.chunk), flags: 4), frame) == .illegalMessage)
        // A zlib chunk on protocol 2 (its Compression is zstd only).
        var zlibFrame = ByteBuffer()
        #expect(try ChunkCompressor(zstd: false).encode(ByteBuffer(repeating: 0, count: Self.chunk), into: &zlibFrame) == ChunkHeader.compressed)
        #expect(status(ChunkHeader(sequence: 0, offset: 0, length: UInt32(Self.chunk), flags: ChunkHeader.compressed), zlibFrame) == .illegalMessage)
        let v1 = try ChunkDecompressor(zstd: false, allocator: ByteBufferAllocator())
        var v1Status: WindowsStatus?
        do throws(MigrationServiceError) {
            _ = try v1.decode(ChunkHeader(sequence: 0, offset: 0, length: UInt32(4 * Self.chunk), flags: ChunkHeader.zstd), frame)
        } catch { v1Status = error.status }
        #expect(v1Status == .illegalMessage)
    }

    /// Each destination accepts only its protocol's codec (zstd on 2, zlib on 1), so a source that compressed
    /// the zero chunks with the other one, or a destination that expected it, fails the move.
    @Test("a Compression move arrives byte-identical on protocol 2 (zstd) and with a version-1-only source (zlib)",
          arguments: [1...2, 1...1] as [ClosedRange<UInt16>])
    func move(versions: ClosedRange<UInt16>) async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination()
        let bytes = Self.halfRandomHalfZero(chunks: 9) + [1, 2, 3]
        try lab.sourceVMs.create("vm-z", contents: bytes)
        var options = MoveOptions(performance: .compression, channels: 1, chunkSize: Self.chunk)
        options.protocolVersions = versions
        _ = try await lab.source.move(vm: "vm-z", to: try lab.target(destination), credential: try await lab.userCredential(),
                                      options: options)
        await destination.stop()
        let arrived = lab.contents(lab.destinationVMs, "vm-z") == bytes
        #expect(arrived)
    }

    @Test("a corrupt zstd chunk on a real connection: SEC_E_ILLEGAL_MESSAGE, nothing registered")
    func corruptOnTheWire() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination()
        let endpoint = try requireEndpoint(destination)
        let answer = try await FaultTests.offered(lab, destination, vm: "vm-zbad", size: 2 * 65536) { conn throws(MigrationServiceError) -> MigrationServiceError? in
            #expect(ChunkCodec.usesZstd(conn.negotiation))
            var frame = ByteBuffer()
            _ = try ChunkCompressor(zstd: true).encode(ByteBuffer(repeating: 0, count: 65536), into: &frame)
            frame.setInteger(UInt8(0x5A), at: frame.writerIndex - 2)
            var plain = ByteBuffer()
            WireMessage.chunk(ChunkHeader(sequence: 0, offset: 0, length: 65536, flags: ChunkHeader.zstd), frame).encode(into: &plain)
            try await conn.write(try conn.sealedFrame(&plain))
            do throws(MigrationServiceError) { _ = try await conn.receive(); return nil } catch { return error }
        }
        #expect(answer?.status == .illegalMessage, "\(String(describing: answer))")
        #expect(await FaultTests.failure(of: "vm-zbad", destination) == .illegalMessage)
        await destination.stop()
        await FaultTests.expectClean(lab, endpoint, vm: "vm-zbad")
    }
}
