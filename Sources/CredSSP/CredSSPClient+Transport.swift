import NIOCore

extension CredSSPClient {
    /// Runs the whole client exchange over a transport that carries one CredSSP token per frame: sends the
    /// ClientHello, answers every server frame, and returns once the encrypted credentials are sent.
    /// - Parameters:
    ///   - frames: the server's tokens, one per element.
    ///   - send: writes one token to the server as one frame.
    /// - Throws: ``CredSSPError``; transport failures and an early end of `frames` are ``CredSSPError/Kind/transport``.
    public nonisolated func run<Frames: AsyncSequence>(
        frames: Frames, send: ([UInt8]) async throws -> Void
    ) async throws(CredSSPError) where Frames.Element == [UInt8] {
        func write(_ bytes: [UInt8]) async throws(CredSSPError) {
            do { try await send(bytes) } catch { throw CredSSPError.transport("Cannot send to the server", error) }
        }
        guard case .send(let hello) = try await step(nil) else {
            throw CredSSPError.unexpected("The client finished before sending its ClientHello")
        }
        try await write(hello)
        do {
            for try await frame in frames {
                switch try await step(frame) {
                case .send(let bytes):
                    try await write(bytes)
                case .finished(let bytes):
                    try await write(bytes)
                    return
                }
            }
        } catch let error as CredSSPError {
            throw error
        } catch {
            throw CredSSPError.transport("Cannot read from the server", error)
        }
        throw CredSSPError.transport("The server closed the connection before the CredSSP exchange finished")
    }

    /// ``run(frames:send:)`` over a NIO channel whose pipeline delivers one CredSSP token per `ByteBuffer`.
    public nonisolated func run(inbound: NIOAsyncChannelInboundStream<ByteBuffer>,
                                outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) async throws(CredSSPError) {
        try await run(frames: inbound.map { Array($0.readableBytesView) }) { try await outbound.write(ByteBuffer(bytes: $0)) }
    }
}
