import WindowsStatus

/// What a destination did, in order: for tests and logs (rules N1, P1, N2 are visible here).
public enum MigrationEvent: Sendable, Hashable, CustomStringConvertible {
    /// N1: a connection on an address outside the incoming networks was refused.
    case refused(localAddress: String, status: WindowsStatus)
    /// A connection failed authentication.
    case authenticationFailed(status: WindowsStatus)
    /// P1: the authenticated user is not allowed to migrate to this host.
    case denied(user: String, status: WindowsStatus)
    /// A migration was offered by `user` (the authenticated principal, never the source host).
    case offered(vm: String, user: String)
    /// N2: the migration waits for a free slot (1 = next).
    case queued(vm: String, position: Int)
    /// The migration got a slot and its data is flowing.
    case started(vm: String, user: String)
    /// One more channel of an SMB migration joined.
    case channelJoined(vm: String, channel: Int)
    /// The VM was verified, made durable and registered.
    case committed(vm: String, bytes: UInt64)
    /// The migration failed; staging was removed.
    case failed(vm: String, status: WindowsStatus, detail: String)

    public var description: String {
        switch self {
        case .refused(let a, let s): "refused \(a) \(s.hex)"
        case .authenticationFailed(let s): "authentication failed \(s.hex)"
        case .denied(let u, let s): "denied \(u) \(s.hex)"
        case .offered(let vm, let u): "offered \(vm) by \(u)"
        case .queued(let vm, let p): "queued \(vm) at \(p)"
        case .started(let vm, let u): "started \(vm) for \(u)"
        case .channelJoined(let vm, let c): "channel \(c) joined \(vm)"
        case .committed(let vm, let b): "committed \(vm) (\(b) bytes)"
        case .failed(let vm, let s, let d): "failed \(vm) \(s.hex): \(d)"
        }
    }
}

/// An append-only event list that can be awaited.
actor EventLog {
    private(set) var events: [MigrationEvent] = []
    private var waiters: [(predicate: @Sendable ([MigrationEvent]) -> Bool, continuation: CheckedContinuation<Void, Never>)] = []

    func append(_ event: MigrationEvent) {
        events.append(event)
        let snapshot = events
        var remaining: [(predicate: @Sendable ([MigrationEvent]) -> Bool, continuation: CheckedContinuation<Void, Never>)] = []
        for w in waiters {
            if w.predicate(snapshot) { w.continuation.resume() } else { remaining.append(w) }
        }
        waiters = remaining
    }

    /// Returns once `predicate` holds for the events so far.
    func wait(until predicate: @escaping @Sendable ([MigrationEvent]) -> Bool) async {
        if predicate(events) { return }
        await withCheckedContinuation { waiters.append((predicate, $0)) }
    }
}
