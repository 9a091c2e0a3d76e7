import Foundation
import MigrationService
import NIOCore
import NIOPosix
import Testing

@Suite("A server that closes while peers connect drops its unclaimed children cleanly")
struct ChildChannelTests {
    /// Connections accepted while the server closes: the server's stream drops them before they become
    /// active. A plain `NIOAsyncChannel` then stops the process (NIO's "Deinited NIOAsyncWriter without
    /// calling finish()"); a ``ChildChannel`` closes them. Each round: a server that stops reading its
    /// children at once, and many clients connecting meanwhile; every client's connection must end.
    @Test("rounds of a server closing under a burst of connections: no crash, every client sees the end")
    func serverClosingUnderConnections() async throws {
        for _ in 0..<10 {
            let clients = try await Self.burstWhileClosing()
            // Each accepted connection is closed by the server side (unclaimed children), none is left open.
            for c in clients {
                await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await c.closeFuture.get() }
                    group.addTask {
                        try await Task.sleep(for: .seconds(10))
                        c.close(promise: nil)
                        throw CancellationError()
                    }
                    defer { group.cancelAll() }
                    do { _ = try await group.next() } catch { Issue.record("a connection stayed open 10 s after the server closed") }
                }
            }
        }
    }

    /// A server that closes at once while 40 clients connect; returns the clients that connected.
    /// The server (and the children its stream still holds) is gone when this returns.
    static func burstWhileClosing() async throws -> [any Channel] {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    ChildChannel(try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel))
                }
            }
        let port = try #require(server.channel.localAddress?.port)
        return try await withThrowingTaskGroup(of: (any Channel)?.self) { group in
            for _ in 0..<40 {
                group.addTask {
                    try? await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                        .connect(host: "127.0.0.1", port: port).get()
                }
            }
            // The server stops while the connections arrive: it never takes a child.
            try await server.executeThenClose { _ in }
            var out: [any Channel] = []
            for try await c in group { if let c { out.append(c) } }
            return out
        }
    }
}
