import NIOCore
import NIOPosix
import Synchronization

extension Duration {
    var nanoseconds: Int64 {
        let (s, a) = components
        return s * 1_000_000_000 + a / 1_000_000_000
    }
}

/// A TCP listener on a loopback address; every accepted connection runs `handler` in a task of
/// its own (never on an event loop).
final class Listener: Sendable {
    /// The bound address, with the real port when 0 was asked for.
    let endpoint: ServiceEndpoint
    private let server: Channel
    private let children = Mutex<[ObjectIdentifier: Channel]>([:])
    private let done = Mutex<Task<Void, Never>?>(nil)
    /// Unauthenticated connections now.
    let admission: Admission

    private init(endpoint: ServiceEndpoint, server: Channel, admission: Admission) {
        self.endpoint = endpoint
        self.server = server
        self.admission = admission
    }

    /// Starts listening. A connection that has not authenticated `handshakeTimeout` after it was
    /// accepted is closed (a silent or slow peer cannot hold it).
    /// `limits` caps unauthenticated connections (in total and per peer address: more are closed at
    /// once) and their frames; `limits()` is read for each connection, so a reload applies.
    static func start(on endpoint: ServiceEndpoint, stage: MigrationStage, handshakeTimeout: Duration,
                      limits: @escaping @Sendable () -> ServiceLimits = { .default },
                      handler: @escaping @Sendable (FrameConnection) async -> Void) async throws(MigrationServiceError) -> Listener {
        let address = try endpoint.socketAddress()
        ServingThreads.start()
        let admission = Admission()
        let server: NIOAsyncChannel<ServerChild, Never>
        do {
            server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
                .bind(to: address) { [admission] channel in
                    // Caps on unauthenticated connections: over them, the child is closed here (no task, no buffers).
                    let current = limits()
                    let peer = channel.remoteAddress?.ipAddress ?? "?"
                    guard admission.admit(peer, limits: current) else {
                        channel.close(promise: nil)
                        return channel.eventLoop.makeFailedFuture(AdmissionRefused())
                    }
                    return FrameConnection.initializeServer(channel, peer: peer,
                                                            unauthenticatedLimit: current.maximumUnauthenticatedFrameLength)
                }
        } catch {
            throw .failure(.configuration, .invalidArgument, stage: stage, reason: "Could not listen on \(endpoint)",
                           detail: "\(error)")
        }
        let port = server.channel.localAddress?.port ?? endpoint.port
        let listener = Listener(endpoint: try ServiceEndpoint(address: endpoint.address, port: port), server: server.channel,
                                admission: admission)
        let task = Task<Void, Never> {
            _ = try? await server.executeThenClose { inbound in
                await withDiscardingTaskGroup { group in
                    do {
                        for try await child in inbound {
                            group.addTask {
                                await listener.serve(child, peer: child.peer, stage: stage, handshakeTimeout: handshakeTimeout,
                                                     handler: handler)
                            }
                        }
                    } catch {}
                }
            }
        }
        listener.done.withLock { $0 = task }
        return listener
    }

    /// How long a server waits, after sending an error, for the peer to hang up.
    static let drainTimeout: Duration = .seconds(2)

    private func serve(_ server: ServerChild, peer: String, stage: MigrationStage,
                       handshakeTimeout: Duration, handler: @Sendable (FrameConnection) async -> Void) async {
        let child = server.channel.claim()
        let key = ObjectIdentifier(child.channel)
        children.withLock { $0[key] = child.channel }
        defer { _ = children.withLock { $0.removeValue(forKey: key) } }
        // The unauthenticated place is given back once: at authentication or at the end.
        let place = Flag()
        let admission = self.admission
        place.whenSet { admission.release(peer) }
        defer { place.set(true) }
        try? await child.executeThenClose { inbound, outbound in
            let conn = FrameConnection(channel: child, inbound: inbound, outbound: outbound, stage: stage)
            let authenticated = conn.authenticated
            let channel = child.channel
            let limit = server.limit
            authenticated.whenSet {
                limit.set(WireProtocol.maximumFrameLength)
                place.set(true)
            }
            conn.activity = server.activity
            conn.close = { channel.close(promise: nil) }
            let timer = channel.eventLoop.scheduleTask(in: .nanoseconds(Int64(handshakeTimeout.nanoseconds))) {
                if !authenticated.isSet { channel.close(promise: nil) }
            }
            await handler(conn)
            timer.cancel()
            if conn.sentError {
                // Let the peer read the error: drop what it still sends until it hangs up (at most
                // `drainTimeout`), so the close is a FIN and not a reset.
                let drainTimer = channel.eventLoop.scheduleTask(in: .nanoseconds(Int64(Self.drainTimeout.nanoseconds))) {
                    channel.close(promise: nil)
                }
                await conn.drain()
                drainTimer.cancel()
            }
        }
    }

    /// Stops accepting, closes open connections and waits for their tasks to end. `cancelling`: the
    /// connections' tasks are cancelled too (work that outlives its connection, such as an outgoing move
    /// a management connection asked for, ends as a failure).
    func stop(cancelling: Bool = false) async {
        try? await server.close()
        let task = done.withLock { $0 }
        if cancelling { task?.cancel() }
        for channel in children.withLock({ Array($0.values) }) { try? await channel.close() }
        await task?.value
    }

    /// Closes the listening socket only: open connections go on.
    func stopAccepting() async {
        try? await server.close()
    }
}

/// The listener of a service that can be started and stopped (nil while stopped).
final class ListenerSlot: Sendable {
    private let listener = Mutex<Listener?>(nil)

    var endpoint: ServiceEndpoint? { listener.withLock { $0?.endpoint } }

    /// Connections that have not authenticated yet (0 while stopped).
    var unauthenticatedConnections: Int { listener.withLock { $0?.admission.unauthenticated } ?? 0 }

    func set(_ l: Listener) { listener.withLock { $0 = l } }

    /// Stops and forgets the listener, if any (`cancelling`: see ``Listener/stop(cancelling:)``).
    func stop(cancelling: Bool = false) async {
        let l = listener.withLock { s in
            defer { s = nil }
            return s
        }
        await l?.stop(cancelling: cancelling)
    }

    /// Closes the listening socket; open connections go on.
    func stopAccepting() async {
        await listener.withLock { $0 }?.stopAccepting()
    }
}
