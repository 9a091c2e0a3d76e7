import NIOCore

/// Splits the byte stream into frames: a 4-byte big-endian length, then that many bytes.
///
/// Like NIOExtras' `LengthFieldBasedFrameDecoder`, but refuses a length of 0 or above `maximumLength`
/// as soon as the length field arrives (no buffering of an oversized frame), and reports a stream
/// that ends inside a frame.
struct FrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    let fixedMaximum: Int
    /// When set, the limit in force now (a server's connection: small until the peer authenticates).
    let limit: FrameLimit?

    var maximumLength: Int { limit?.current ?? fixedMaximum }

    init(maximumLength: Int = WireProtocol.maximumFrameLength, limit: FrameLimit? = nil) {
        self.fixedMaximum = maximumLength
        self.limit = limit
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        let maximumLength = self.maximumLength
        guard length >= 1, Int(length) <= maximumLength else {
            throw FramingError.badLength(Int(length), maximum: maximumLength)
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        guard let frame = buffer.readSlice(length: Int(length)) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(frame))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer,
                             seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        if buffer.readableBytes > 0 {
            let have = buffer.readableBytes
            buffer.moveReaderIndex(forwardBy: have)
            throw FramingError.truncated(have)
        }
        return .needMoreData
    }
}

/// Framing failures (become protocol errors with `SEC_E_ILLEGAL_MESSAGE` or a reset).
enum FramingError: Error, Sendable, CustomStringConvertible {
    case badLength(Int, maximum: Int)
    case truncated(Int)

    var description: String {
        switch self {
        case .badLength(let n, let max): "frame length \(n) outside 1…\(max)"
        case .truncated(let n): "connection closed inside a frame (\(n) bytes of it received)"
        }
    }
}
