import MigrationService
import NIOCore
import NIOPosix
import Synchronization

/// A TCP relay on 127.0.0.1 in front of a destination that stops a migration at one phase of a file move so
/// that a test can kill a party there (``FaultMatrixTests``). It reads the source → destination direction
/// frame by frame (4-byte length, then the frame; the contents are sealed and stay opaque) and, at the phase:
/// - `beforeOffer`: holds everything after the source's first frame (`hello`): the handshake never finishes;
/// - `midStream`: holds the first frame that starts after half of the VM's size has gone through;
/// - `commitHeld`: holds the second small frame after the whole VM has gone through (`channelDone`, then
///   `commit`): the source has let go of its VM and sent `commit`, which never arrives;
/// - `commitDelivered`: forwards that `commit` and from then on swallows what the destination answers
///   (`committed` never reaches the source, nor the destination's close);
/// - `afterCommit`: forwards everything; reports once the destination's answer to `commit` has gone back.
/// Only the first relayed connection is watched (the matrix moves over one channel); held frames can be
/// released in order (``release()``) when the party killed was not on the link (the KDC). Later connections
/// are relayed untouched (to the port of ``retarget(port:)`` once a killed destination runs again).
///
/// `live`: a live QEMU move (``CommitWindowKillTests``), whose stream length is not known in advance: `vmSize`
/// is then only a threshold of bytes after which the stream is under way, and the commit phases start at the
/// first source frame after the destination's first answer past it (its `channelDone` echo: a destination
/// sends nothing while a live stream flows), which is `commit`.
final class FaultLink: Sendable {
    enum Phase: String, Sendable, CaseIterable, CustomStringConvertible {
        case beforeOffer, midStream, commitHeld, commitDelivered, afterCommit
        var description: String { rawValue }
    }

    let port: Int
    /// Yields once, when the phase is reached.
    let reached: AsyncStream<Void>
    private let reachedContinuation: AsyncStream<Void>.Continuation
    private let server: Channel
    private let state: Mutex<State>

    private struct State {
        let phase: Phase
        let vmSize: Int
        let live: Bool
        /// The destination's port for the next connection.
        var target: Int
        /// Live: the destination answered after the stream got under way (its `channelDone` echo).
        var echoSeen = false
        /// Both channels of the watched connection.
        var watchedChannels: [Channel] = []
        var connections = 0
        var frames = 0
        var bytes = 0
        var smallAfterData = 0
        var holding = false
        var held: [ByteBuffer] = []
        var swallowing = false
        var commitForwarded = false
        var signalled = false
        var writer: AsyncStream<ByteBuffer>.Continuation? = nil
        var children: [Channel] = []
    }

    private init(port: Int, server: Channel, phase: Phase, vmSize: Int, live: Bool, target: Int) {
        self.port = port
        self.server = server
        state = Mutex(State(phase: phase, vmSize: vmSize, live: live, target: target))
        (reached, reachedContinuation) = AsyncStream.makeStream(of: Void.self)
    }

    static func start(to host: String, port target: Int, phase: Phase, vmSize: Int, live: Bool = false) async throws -> FaultLink {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    ChildChannel(try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel))
                }
            }
        let link = FaultLink(port: server.channel.localAddress?.port ?? 0, server: server.channel, phase: phase, vmSize: vmSize,
                             live: live, target: target)
        Task {
            try? await server.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await child in inbound {
                        let client = child.claim()
                        link.state.withLock { $0.children.append(client.channel) }
                        group.addTask { try? await link.pipe(client, to: host) }
                    }
                }
            }
        }
        return link
    }

    /// Forwards the held frames (in order) and everything after them.
    func release() {
        state.withLock { s in
            s.holding = false
            for frame in s.held { s.writer?.yield(frame) }
            s.held = []
        }
    }

    /// New connections go to `port` (a destination started again).
    func retarget(port: Int) { state.withLock { $0.target = port } }

    /// Closes the watched connection (both sides; what it swallowed stays swallowed): its peers see the link die.
    /// The listener stays, for later connections.
    func cutWatched() async {
        let channels = state.withLock { s in
            s.swallowing = false
            return s.watchedChannels
        }
        for c in channels { try? await c.close() }
    }

    /// Closes every relayed connection and the listener.
    func close() async {
        for c in state.withLock({ $0.children }) { try? await c.close() }
        try? await server.close()
        reachedContinuation.finish()
    }

    private func signal(_ s: inout State) {
        guard !s.signalled else { return }
        s.signalled = true
        reachedContinuation.yield()
    }

    /// Whether a whole upstream frame of `length` bytes (prefix included) goes on now; decides the phase.
    private func decide(_ s: inout State, length: Int) -> Bool {
        if s.holding { return false }
        let before = s.bytes
        s.frames += 1
        s.bytes += length
        switch s.phase {
        case .beforeOffer:
            guard s.frames >= 2 else { return true }
            s.holding = true
            signal(&s)
            return false
        case .midStream:
            guard before >= s.vmSize / 2, !s.signalled else { return true }
            s.holding = true
            signal(&s)
            return false
        case .commitHeld, .commitDelivered, .afterCommit:
            if s.live {
                guard s.echoSeen, !s.commitForwarded else { return true }  // the frame after the echo: commit
            } else {
                guard before >= s.vmSize, length < 1024, !s.commitForwarded else { return true }
                s.smallAfterData += 1
                guard s.smallAfterData == 2 else { return true }  // 1: channelDone, 2: commit
            }
            switch s.phase {
            case .commitHeld:
                s.holding = true
                signal(&s)
                return false
            case .commitDelivered:
                s.swallowing = true
                s.commitForwarded = true
                signal(&s)
                return true
            default:
                s.commitForwarded = true
                return true
            }
        }
    }

    /// Whether downstream bytes of the watched connection go back to the source now.
    private func downstream() -> Bool {
        state.withLock { s in
            if s.live, s.bytes >= s.vmSize { s.echoSeen = true }
            if s.swallowing { return false }
            if s.phase == .afterCommit, s.commitForwarded { signal(&s) }
            return true
        }
    }

    private func pipe(_ client: NIOAsyncChannel<ByteBuffer, ByteBuffer>, to host: String) async throws {
        let port = state.withLock { $0.target }
        let upstream: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            upstream = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            // The destination is down (killed, not started again yet): the client's connection just closes.
            try? await client.executeThenClose { _, _ in }
            throw error
        }
        let (frames, writer) = AsyncStream.makeStream(of: ByteBuffer.self)
        let watched = state.withLock { s in
            s.children.append(upstream.channel)
            s.connections += 1
            if s.connections == 1 {
                s.writer = writer
                s.watchedChannels = [client.channel, upstream.channel]
            }
            return s.connections == 1
        }
        try await client.executeThenClose { clientIn, clientOut in
            try await upstream.executeThenClose { upIn, upOut in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        // One writer, fed in order under the lock by the reader below and by release().
                        for await frame in frames { try await upOut.write(frame) }
                    }
                    group.addTask {
                        defer { writer.finish() }
                        var pending = ByteBuffer()
                        for try await var b in clientIn {
                            guard watched else {
                                writer.yield(b)
                                continue
                            }
                            pending.writeBuffer(&b)
                            while let length = pending.getInteger(at: pending.readerIndex, as: UInt32.self),
                                  pending.readableBytes >= 4 + Int(length),
                                  let frame = pending.readSlice(length: 4 + Int(length)) {
                                self.state.withLock { s in
                                    if self.decide(&s, length: frame.readableBytes) { writer.yield(frame) } else { s.held.append(frame) }
                                }
                            }
                            pending.discardReadBytes()
                        }
                    }
                    group.addTask {
                        for try await b in upIn where !watched || self.downstream() {
                            try await clientOut.write(b)
                        }
                        // Swallowing (`commitDelivered`): the destination's close does not reach the source either
                        // (it would end the source's wait in the commit window before the test's kill); the
                        // source's side stays open until it goes away, ``cutWatched()`` or ``close()``.
                        while watched, self.state.withLock({ $0.swallowing }), !Task.isCancelled {
                            try? await Task.sleep(for: .milliseconds(50))
                        }
                    }
                    _ = try await group.next()
                    group.cancelAll()
                }
            }
        }
    }
}
