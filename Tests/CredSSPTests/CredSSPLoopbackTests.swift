@testable import CredSSP
import NIOCore
import NIOExtras
import NIOPosix
import Testing

/// Swift client and Swift server over real loopback TCP, one 4-byte big-endian length prefix per token.
@Suite struct CredSSPLoopbackTests {
    typealias FramedChannel = NIOAsyncChannel<ByteBuffer, ByteBuffer>

    static func framed(_ channel: any Channel) -> EventLoopFuture<FramedChannel> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LengthFieldBasedFrameDecoder(lengthFieldBitLength: .fourBytes)))
            try channel.pipeline.syncOperations.addHandler(LengthFieldPrepender(lengthFieldBitLength: .fourBytes))
            return try FramedChannel(wrappingChannelSynchronously: channel)
        }
    }

    @Test(arguments: [3, 6]) func credentialsCrossRealTCP(version: Int) async throws {
        let (client, server) = try CredSSPExchangeTests.pair(clientPolicy: CredSSPPolicy(minimumVersion: 2, version: version),
                                                            serverPolicy: CredSSPPolicy(minimumVersion: 2))
        let group = MultiThreadedEventLoopGroup.singleton
        let listener = try await ServerBootstrap(group: group)
            .bind(host: "127.0.0.1", port: 0) { Self.framed($0) }
        let port = try #require(listener.channel.localAddress?.port)

        async let received: CredSSPCredentials? = {
            try await listener.executeThenClose { inbound in
                for try await connection in inbound {
                    return try await connection.executeThenClose { input, output in
                        for try await frame in input {
                            switch try await server.step(Array(frame.readableBytesView)) {
                            case .send(let bytes): try await output.write(ByteBuffer(bytes: bytes))
                            case .finished(let credentials): return credentials
                            }
                        }
                        return nil
                    }
                }
                return nil
            }
        }()

        let connection = try await ClientBootstrap(group: group)
            .connect(host: "127.0.0.1", port: port) { Self.framed($0) }
        try await connection.executeThenClose { input, output in
            guard case .send(let hello) = try await client.step(nil) else { return }
            try await output.write(ByteBuffer(bytes: hello))
            for try await frame in input {
                switch try await client.step(Array(frame.readableBytesView)) {
                case .send(let bytes): try await output.write(ByteBuffer(bytes: bytes))
                case .finished(let bytes):
                    try await output.write(ByteBuffer(bytes: bytes))
                    return
                }
            }
        }
        let credentials = try #require(try await received)
        #expect(credentials.domain == "CONTOSO")
        #expect(credentials.user == "alice")
        #expect(credentials.password == "Corr3ct-horse")
    }
}
