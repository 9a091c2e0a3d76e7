import CZstd
import CompressNIO
import NIOCore

/// The Compression option's per-chunk codec for one connection: zstd on protocol 2 (chunk flag bit 1),
/// zlib level 1 on protocol 1 (flag bit 0). A chunk is sent compressed only when that saves at least
/// 3 % (``ChunkCodec/worthwhile(_:of:)``); incompressible memory goes raw.
///
/// Each codec owns its zstd context (`ZSTD_CCtx` / `ZSTD_DCtx`), reused for every chunk of the
/// connection and freed with the codec; it is used by one task (a ``ChunkSender`` or ``ChunkReceiver``).
enum ChunkCodec {
    /// zstd's level for migration chunks: the fastest positive level; the link, not the ratio, is the bar.
    static let zstdLevel: Int32 = 1

    /// Whether a compressed size is worth sending instead of the `length` raw bytes (< 97 %).
    static func worthwhile(_ compressed: Int, of length: Int) -> Bool {
        compressed < length - length / 32 - 1
    }

    /// Whether a connection that agreed `negotiation` compresses with zstd (protocol 2 and later).
    static func usesZstd(_ negotiation: SuiteNegotiation?) -> Bool {
        (negotiation?.version ?? 1) >= 2
    }
}

/// The source's side: compresses one chunk at a time into the outgoing buffer.
final class ChunkCompressor {
    private let zstd: OpaquePointer?
    private let zlib: NIOCompressor?

    /// A zstd compressor when `zstd` (protocol 2), otherwise zlib level 1.
    init(zstd useZstd: Bool) throws(MigrationServiceError) {
        if useZstd {
            guard let ctx = ZSTD_createCCtx() else {
                throw MigrationServiceError.failure(.storage, .unspecifiedFailure, stage: .source,
                                                    reason: "Could not compress the virtual machine",
                                                    detail: "ZSTD_createCCtx failed")
            }
            // Level 1, and zstd's content checksum (XXH64, 4 bytes per frame; the receiver's decompression
            // checks it): the one check of the codec itself, which the AEAD cannot give (it authenticates the
            // compressed bytes). Costs ~0.1 ms per MiB.
            guard ZSTD_isError(ZSTD_CCtx_setParameter(ctx, ZSTD_c_compressionLevel, ChunkCodec.zstdLevel)) == 0,
                  ZSTD_isError(ZSTD_CCtx_setParameter(ctx, ZSTD_c_checksumFlag, 1)) == 0 else {
                ZSTD_freeCCtx(ctx)
                throw MigrationServiceError.failure(.storage, .unspecifiedFailure, stage: .source,
                                                    reason: "Could not compress the virtual machine",
                                                    detail: "ZSTD_CCtx_setParameter failed")
            }
            zstd = ctx
            zlib = nil
        } else {
            var config = ZlibConfiguration()
            config.compressionLevel = 1  // fastest: compression must beat the link, not win prizes
            zstd = nil
            zlib = CompressionAlgorithm.zlib(configuration: config).compressor
        }
    }

    deinit {
        if let zstd { ZSTD_freeCCtx(zstd) }
    }

    /// Appends `raw` to `out`, compressed when worthwhile; returns the chunk flags (0 when sent raw).
    func encode(_ raw: ByteBuffer, into out: inout ByteBuffer) throws(MigrationServiceError) -> UInt8 {
        let length = raw.readableBytes
        let mark = out.writerIndex
        var flags: UInt8 = 0
        if let zstd {
            let bound = ZSTD_compressBound(length)
            out.reserveCapacity(minimumWritableBytes: bound)
            let result = out.withUnsafeMutableWritableBytes { dst in
                raw.withUnsafeReadableBytes { src in
                    ZSTD_compress2(zstd, dst.baseAddress, dst.count, src.baseAddress, src.count)
                }
            }
            if ZSTD_isError(result) != 0 {
                throw MigrationServiceError.failure(.storage, .unspecifiedFailure, stage: .source,
                                                    reason: "Could not compress the virtual machine",
                                                    detail: String(cString: ZSTD_getErrorName(result)))
            }
            if ChunkCodec.worthwhile(result, of: length) {
                out.moveWriterIndex(forwardBy: result)
                flags = ChunkHeader.zstd
            }
        } else if let zlib {
            out.reserveCapacity(minimumWritableBytes: length + length / 256 + 64)  // ≥ zlib's deflateBound
            var input = raw
            do {
                try zlib.deflate(from: &input, to: &out)
            } catch {
                throw MigrationServiceError.failure(.storage, .unspecifiedFailure, stage: .source,
                                                    reason: "Could not compress the virtual machine", detail: "\(error)")
            }
            if ChunkCodec.worthwhile(out.writerIndex - mark, of: length) {
                flags = ChunkHeader.compressed
            } else {
                out.moveWriterIndex(to: mark)
            }
        }
        if flags == 0 {
            var r = raw
            out.writeBuffer(&r)  // incompressible: as is
        }
        return flags
    }
}

/// The destination's side: decompresses one chunk into a scratch buffer of exactly its declared length.
final class ChunkDecompressor {
    private let zstd: OpaquePointer?
    private let zlib = CompressionAlgorithm.zlib().decompressor
    private var scratch: ByteBuffer

    /// Accepts zstd chunks (flag bit 1) only when `zstd` (protocol 2), zlib chunks (bit 0) only otherwise.
    init(zstd useZstd: Bool, allocator: ByteBufferAllocator) throws(MigrationServiceError) {
        scratch = allocator.buffer(capacity: 0)
        if useZstd {
            guard let ctx = ZSTD_createDCtx() else {
                throw MigrationServiceError.failure(.storage, .unspecifiedFailure, stage: .destination,
                                                    reason: "Could not decompress the virtual machine",
                                                    detail: "ZSTD_createDCtx failed")
            }
            zstd = ctx
        } else {
            zstd = nil
        }
    }

    deinit {
        if let zstd { ZSTD_freeDCtx(zstd) }
    }

    /// The chunk's plaintext: `data` itself when raw, otherwise its decompression, which must be exactly
    /// `header.length` bytes (a larger output is refused before it is written: no zip bombs).
    func decode(_ header: ChunkHeader, _ data: ByteBuffer) throws(MigrationServiceError) -> ByteBuffer {
        let length = Int(header.length)
        let known = ChunkHeader.compressed | ChunkHeader.zstd
        guard header.flags & ~known == 0, header.flags != known else {
            throw MigrationServiceError.protocolViolation("chunk \(header.sequence) has unknown flags \(header.flags)",
                                                          stage: .destination)
        }
        if header.flags == 0 {
            guard data.readableBytes == length else {
                throw MigrationServiceError.protocolViolation("chunk \(header.sequence) has the wrong size", stage: .destination)
            }
            return data
        }
        scratch.clear()
        scratch.reserveCapacity(length)
        if header.flags == ChunkHeader.zstd {
            guard let zstd else {
                throw MigrationServiceError.protocolViolation("chunk \(header.sequence) is zstd-compressed on protocol 1",
                                                              stage: .destination)
            }
            let declared = data.withUnsafeReadableBytes { ZSTD_getFrameContentSize($0.baseAddress, $0.count) }
            guard declared == UInt64(length) else {
                throw MigrationServiceError.protocolViolation("chunk \(header.sequence) does not decompress: frame content size \(declared), chunk length \(length)",
                                                              stage: .destination)
            }
            // The output capacity is exactly `length`: zstd stops with an error rather than write more.
            let result = scratch.withUnsafeMutableWritableBytes { dst in
                data.withUnsafeReadableBytes { src in
                    ZSTD_decompressDCtx(zstd, dst.baseAddress, min(dst.count, length), src.baseAddress, src.count)
                }
            }
            if ZSTD_isError(result) != 0 {
                throw MigrationServiceError.protocolViolation("chunk \(header.sequence) does not decompress: \(String(cString: ZSTD_getErrorName(result)))",
                                                              stage: .destination)
            }
            scratch.moveWriterIndex(forwardBy: result)
        } else {
            guard zstd == nil else {
                throw MigrationServiceError.protocolViolation("chunk \(header.sequence) is zlib-compressed on protocol 2 (zstd only)",
                                                              stage: .destination)
            }
            var input = data
            do {
                try zlib.inflate(from: &input, to: &scratch)
            } catch {
                throw MigrationServiceError.protocolViolation("chunk \(header.sequence) does not decompress: \(error)",
                                                              stage: .destination)
            }
        }
        guard scratch.readableBytes == length else {
            throw MigrationServiceError.protocolViolation("chunk \(header.sequence) decompresses to the wrong size",
                                                          stage: .destination)
        }
        return scratch
    }
}
