import CredSSP
import NIOCore
import NIOExtras
import NIOPosix

/// Real loopback TCP for the tests: one 4-byte big-endian length prefix per CredSSP token.
enum LoopbackTransport {
    typealias FramedChannel = NIOAsyncChannel<ByteBuffer, ByteBuffer>
    typealias Listener = NIOAsyncChannel<FramedChannel, Never>

    static func framed(_ channel: any Channel) -> EventLoopFuture<FramedChannel> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LengthFieldBasedFrameDecoder(lengthFieldBitLength: .fourBytes)))
            try channel.pipeline.syncOperations.addHandler(LengthFieldPrepender(lengthFieldBitLength: .fourBytes))
            return try FramedChannel(wrappingChannelSynchronously: channel)
        }
    }

    /// A listener on 127.0.0.1 with an ephemeral port.
    static func listen() async throws -> (listener: Listener, port: Int) {
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0) { framed($0) }
        guard let port = listener.channel.localAddress?.port else { throw NoPort() }
        return (listener, port)
    }

    struct NoPort: Error {}

    /// Accepts one connection and runs `body` on it; nil when the listener closes first.
    static func acceptOne<T: Sendable>(_ listener: Listener,
                                       _ body: (NIOAsyncChannelInboundStream<ByteBuffer>, NIOAsyncChannelOutboundWriter<ByteBuffer>) async throws -> T)
        async throws -> T?
    {
        try await listener.executeThenClose { inbound in
            for try await connection in inbound {
                return try await connection.executeThenClose { input, output in try await body(input, output) }
            }
            return nil
        }
    }

    /// Accepts one connection and runs the CredSSP server over it.
    static func serve(_ server: CredSSPServer, on listener: Listener) async throws -> Result<CredSSPCredentials, CredSSPError>? {
        try await acceptOne(listener) { input, output in
            do throws(CredSSPError) {
                return .success(try await server.run(inbound: input, outbound: output))
            } catch {
                return .failure(error)
            }
        }
    }

    /// Connects to 127.0.0.1:`port` and runs the CredSSP client over the connection.
    static func runClient(_ client: CredSSPClient, port: Int) async throws -> Result<Void, CredSSPError> {
        let connection = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { framed($0) }
        return try await connection.executeThenClose { input, output in
            do throws(CredSSPError) {
                return .success(try await client.run(inbound: input, outbound: output))
            } catch {
                return .failure(error)
            }
        }
    }
}

extension Result {
    /// The failure, if any (for `#expect` on typed errors).
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
