// libFuzzer target (docs/fuzzing.md): the destination's frame decoder over a byte stream that arrives in
// arbitrary pieces, then every frame it yields through the wire-message decoder at protocol 1 and 2.
// Built only with MIGAUTH_FUZZ=1 and `-sanitize=fuzzer` (.ci/fuzz-smoke).
@testable import MigrationService
import NIOCore
import NIOEmbedded

/// Collects the frames the decoder passes on.
final class FrameSink: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    var frames: [ByteBuffer] = []
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { frames.append(unwrapInboundIn(data)) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrames(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let start, count > 0 else { return 0 }
    let input = UnsafeBufferPointer(start: start, count: count)
    // First byte: how the stream is cut into reads (1…256 bytes each); a small maximum so that
    // oversize lengths are reachable. Bit 0 of the second byte: a server-side limit object.
    let piece = Int(input[0]) + 1
    let sink = FrameSink()
    let limit: FrameLimit? = count > 1 && input[1] & 1 == 1 ? FrameLimit(4096) : nil
    let channel = EmbeddedChannel()
    do {
        try channel.pipeline.syncOperations.addHandler(
            ByteToMessageHandler(FrameDecoder(maximumLength: 64 * 1024, limit: limit)))
        try channel.pipeline.syncOperations.addHandler(sink)
    } catch {
        return 0
    }
    var offset = 1
    var failed = false
    while offset < count, !failed {
        let end = min(count, offset + piece)
        var buffer = channel.allocator.buffer(capacity: end - offset)
        buffer.writeBytes(UnsafeBufferPointer(rebasing: input[offset..<end]))
        do { try channel.writeInbound(buffer) } catch { failed = true }
        offset = end
    }
    _ = try? channel.finish()  // decodeLast: a stream that ends inside a frame
    for frame in sink.frames {
        precondition(frame.readableBytes >= 1 && frame.readableBytes <= (limit?.current ?? 64 * 1024),
                     "the decoder passed on a frame outside its limit")
        for version in [WireProtocol.minimumVersion, WireProtocol.version] {
            _ = try? WireMessage.decode(frame, version: version)
        }
    }
    return 0
}
