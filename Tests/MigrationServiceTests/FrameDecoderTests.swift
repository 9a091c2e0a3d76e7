@testable import MigrationService
import NIOCore
import NIOEmbedded
import NIOTestUtils
import Testing

/// The 4-byte length framing of the wire protocol (docs/wire-protocol.md), fed whole, byte by
/// byte and all at once by NIO's verifier, and its refusals.
@Suite struct FrameDecoderTests {
    static func framed(_ payload: [UInt8]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(payload.count))
        buffer.writeBytes(payload)
        return buffer
    }

    @Test("frames come out whole however the stream is cut (ByteToMessageDecoderVerifier)")
    func verifier() throws {
        let one: [UInt8] = [0x01]
        let hello: [UInt8] = Array("MIGA".utf8) + [0, 1, 0, 1, 1, 1]
        let big = (0..<3_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        var two = Self.framed(hello)
        var second = Self.framed(one)
        two.writeBuffer(&second)
        let pairs: [(ByteBuffer, [ByteBuffer])] = [
            (Self.framed(one), [ByteBuffer(bytes: one)]),
            (Self.framed(hello), [ByteBuffer(bytes: hello)]),
            (Self.framed(big), [ByteBuffer(bytes: big)]),
            (two, [ByteBuffer(bytes: hello), ByteBuffer(bytes: one)]),
        ]
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs,
                                                        decoderFactory: { FrameDecoder(maximumLength: 100_000) })
    }

    @Test("a length of 0 or above the maximum is refused as soon as the length field arrives",
          arguments: [UInt32(0), 1_001, UInt32.max])
    func badLength(length: UInt32) throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder(maximumLength: 1_000)))
        var buffer = ByteBuffer()
        buffer.writeInteger(length)  // no payload: the refusal must not wait for it
        do {
            try channel.writeInbound(buffer)
            Issue.record("length \(length) was accepted")
        } catch FramingError.badLength(let n, let maximum) {
            #expect(n == Int(length))
            #expect(maximum == 1_000)
        } catch {
            Issue.record("unexpected error \(error)")
        }
        _ = try? channel.finish()
    }

    @Test("a stream that ends inside a frame is reported, with how much of it arrived")
    func truncated() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder(maximumLength: 1_000)))
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(10))
        buffer.writeBytes([1, 2, 3])
        try channel.writeInbound(buffer)
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil)
        do {
            _ = try channel.finish()
            Issue.record("a stream ending inside a frame was not reported")
        } catch FramingError.truncated(let have) {
            #expect(have == 7)  // the length field and 3 of the 10 payload bytes
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }
}
