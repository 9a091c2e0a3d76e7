import MigrationService
import NIOCore
import NIOPosix
import Synchronization

/// A TCP relay on 127.0.0.1 in front of a destination: the "link" of a migration, which a test can damage.
/// `tamper(afterBytes:)` flips one byte of the source → destination direction (of all connections together, or of
/// the `connection`th one accepted: 0 is a move's main connection, 1 … its multifd channels); `swallowReplies()` stops
/// forwarding destination → source (what the source would see if the link died after it sent a message).
final class LinkRelay: Sendable {
    let port: Int
    private let server: Channel
    private let state = Mutex(State())

    private struct State {
        var tamperAt: UInt64? = nil
        var tamperConnection: Int? = nil
        var upstreamBytes: UInt64 = 0
        var accepted = 0
        var connectionBytes: [Int: UInt64] = [:]
        var swallow = false
        var children: [Channel] = []
    }

    private init(port: Int, server: Channel) {
        self.port = port
        self.server = server
    }

    static func start(to host: String, port target: Int) async throws -> LinkRelay {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    ChildChannel(try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel))
                }
            }
        let relay = LinkRelay(port: server.channel.localAddress?.port ?? 0, server: server.channel)
        Task {
            try? await server.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await child in inbound {
                        let client = child.claim()
                        let index = relay.state.withLock { s -> Int in
                            s.children.append(client.channel)
                            defer { s.accepted += 1 }
                            return s.accepted
                        }
                        group.addTask { try? await relay.pipe(client, index: index, to: host, port: target) }
                    }
                }
            }
        }
        return relay
    }

    /// Flips one byte once `bytes` bytes have gone from the source to the destination (on connection
    /// `connection` only, counted in the order they were accepted, when it is given).
    func tamper(afterBytes bytes: UInt64, connection: Int? = nil) {
        state.withLock { s in
            s.tamperAt = bytes
            s.tamperConnection = connection
        }
    }

    /// From now on, nothing the destination sends reaches the source.
    func swallowReplies() { state.withLock { $0.swallow = true } }

    /// Closes every relayed connection and the listener.
    func cut() async {
        for c in state.withLock({ $0.children }) { try? await c.close() }
        try? await server.close()
    }

    private func pipe(_ client: NIOAsyncChannel<ByteBuffer, ByteBuffer>, index: Int, to host: String, port: Int) async throws {
        let upstream = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        state.withLock { $0.children.append(upstream.channel) }
        try await client.executeThenClose { clientIn, clientOut in
            try await upstream.executeThenClose { upIn, upOut in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for try await var b in clientIn {
                            self.damage(&b, connection: index)
                            try await upOut.write(b)
                        }
                    }
                    group.addTask {
                        for try await b in upIn where !self.state.withLock({ $0.swallow }) {
                            try await clientOut.write(b)
                        }
                    }
                    _ = try await group.next()
                    group.cancelAll()
                }
            }
        }
    }

    private func damage(_ b: inout ByteBuffer, connection: Int) {
        let flipAt: Int? = state.withLock { s in
            let before = s.tamperConnection == nil ? s.upstreamBytes : s.connectionBytes[connection, default: 0]
            defer {
                s.upstreamBytes += UInt64(b.readableBytes)
                s.connectionBytes[connection, default: 0] += UInt64(b.readableBytes)
            }
            guard let at = s.tamperAt, s.tamperConnection == nil || s.tamperConnection == connection,
                  at >= before, at < before + UInt64(b.readableBytes) else { return nil }
            s.tamperAt = nil
            return Int(at - before)
        }
        if let flipAt, let byte = b.getInteger(at: b.readerIndex + flipAt, as: UInt8.self) {
            b.setInteger(byte ^ 0x40, at: b.readerIndex + flipAt)
        }
    }
}
