import NIOCore
import NIOPosix
import Synchronization

/// A TCP relay on 127.0.0.1 to another local port: the "KDC" a child process sees. Stopping it
/// makes the KDC unreachable for that process without stopping the realm's shared KDC, which
/// other tests in this process use; starting it again on the same port brings it back.
final class TCPRelay: Sendable {
    let port: Int
    let target: Int
    private let server: Mutex<Channel?> = Mutex(nil)
    private let children = Mutex<[Channel]>([])

    init(port: Int = 0, target: Int) {
        self.port = port
        self.target = target
    }

    /// Starts listening (on `port`, or a free port when 0) and returns the port.
    static func start(to target: Int, port: Int = 0) async throws -> TCPRelay {
        let probe = TCPRelay(port: port, target: target)
        let bound = try await probe.listen()
        return bound
    }

    private func listen() async throws -> TCPRelay {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let relay = port == 0 ? TCPRelay(port: server.channel.localAddress?.port ?? 0, target: target) : self
        relay.server.withLock { $0 = server.channel }
        let target = self.target
        Task {
            try? await server.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await client in inbound {
                        relay.children.withLock { $0.append(client.channel) }
                        group.addTask { try? await Self.pipe(client, to: target) }
                    }
                }
            }
        }
        return relay
    }

    private static func pipe(_ client: NIOAsyncChannel<ByteBuffer, ByteBuffer>, to target: Int) async throws {
        let upstream = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: target) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        try await client.executeThenClose { clientIn, clientOut in
            try await upstream.executeThenClose { upIn, upOut in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { for try await b in clientIn { try await upOut.write(b) } }
                    group.addTask { for try await b in upIn { try await clientOut.write(b) } }
                    _ = try await group.next()
                    group.cancelAll()
                }
            }
        }
    }

    /// Closes the listener and every relayed connection: connections to `port` are refused.
    func stop() async {
        try? await server.withLock { $0 }?.close()
        for c in children.withLock({ $0 }) { try? await c.close() }
    }

    /// Listens again on the same port.
    func restart() async throws {
        _ = try await listen()
    }
}
