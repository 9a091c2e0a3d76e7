import NIOCore

extension CredSSPServer {
    /// Runs the whole server exchange over a transport that carries one CredSSP token per frame, and returns the
    /// delegated credentials.
    ///
    /// Every client frame is answered with exactly one frame (possibly empty), as the protocol needs. On failure
    /// the error's ``CredSSPError/replyToPeer`` (a TSRequest with `errorCode`) is sent before throwing; closing the
    /// transport is the caller's. The returned ``CredSSPCredentials`` zero their bytes on ``CredSSPCredentials/wipe()``
    /// and when released.
    /// - Parameters:
    ///   - frames: the client's tokens, one per element (for example a length-prefixed TCP stream, decoded).
    ///   - send: writes one token to the client as one frame.
    /// - Throws: ``CredSSPError``; transport failures and an early end of `frames` are ``CredSSPError/Kind/transport``.
    public nonisolated func run<Frames: AsyncSequence>(
        frames: Frames, send: ([UInt8]) async throws -> Void
    ) async throws(CredSSPError) -> CredSSPCredentials where Frames.Element == [UInt8] {
        do {
            for try await frame in frames {
                let next: CredSSPServerStep
                do {
                    next = try await step(frame)
                } catch {
                    if let reply = error.replyToPeer { try? await send(reply) }
                    throw error
                }
                switch next {
                case .send(let bytes):
                    do { try await send(bytes) } catch { throw CredSSPError.transport("Cannot send to the client", error) }
                case .finished(let credentials):
                    return credentials
                }
            }
        } catch let error as CredSSPError {
            throw error
        } catch {
            throw CredSSPError.transport("Cannot read from the client", error)
        }
        throw CredSSPError.transport("The client closed the connection before the CredSSP exchange finished")
    }

    /// ``run(frames:send:)`` over a NIO channel whose pipeline delivers one CredSSP token per `ByteBuffer` (for
    /// example `LengthFieldBasedFrameDecoder` + `LengthFieldPrepender` from swift-nio-extras).
    public nonisolated func run(inbound: NIOAsyncChannelInboundStream<ByteBuffer>,
                                outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) async throws(CredSSPError) -> CredSSPCredentials {
        try await run(frames: inbound.map { Array($0.readableBytesView) }) { try await outbound.write(ByteBuffer(bytes: $0)) }
    }
}
