// libFuzzer target (docs/fuzzing.md): one frame's body through the wire-message decoder (protocol 1 and 2),
// a decoded message re-encoded and decoded again (must give the same message), and a decoded chunk through
// the destination's decompressors (zlib and zstd) under the limits the destination applies.
// Built only with MIGAUTH_FUZZ=1 and `-sanitize=fuzzer` (.ci/fuzz-smoke).
@testable import MigrationService
import NIOCore

let allocator = ByteBufferAllocator()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWireMessage(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let start, count > 0 else { return 0 }
    var frame = allocator.buffer(capacity: count)
    frame.writeBytes(UnsafeBufferPointer(start: start, count: count))
    for version in [WireProtocol.minimumVersion, WireProtocol.version] {
        guard let message = try? WireMessage.decode(frame, version: version) else { continue }
        // Strings are decoded leniently (invalid UTF-8 becomes U+FFFD, up to 3 bytes each) and written
        // with at most 65,535 bytes, so the round trip is exact only for bodies well below that.
        if count < 16 * 1024 {
            var again = allocator.buffer(capacity: count)
            message.encode(into: &again, version: version)
            let decoded: WireMessage
            do { decoded = try WireMessage.decode(again, version: version) } catch {
                preconditionFailure("an encoded \(message) does not decode: \(error)")
            }
            precondition(decoded == message, "round trip changed \(message) into \(decoded)")
        }
        if case .chunk(let header, let data) = message, header.length >= 1,
           Int(header.length) <= WireProtocol.maximumChunkSize {
            for zstd in [false, true] {
                guard let decompressor = try? ChunkDecompressor(zstd: zstd, allocator: allocator) else { continue }
                if let plain = try? decompressor.decode(header, data) {
                    precondition(plain.readableBytes == Int(header.length), "a chunk decoded to the wrong length")
                }
            }
        }
    }
    return 0
}
