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

/// An append-only event list that can be awaited; keeps the latest `capacity` events.
actor EventLog {
    static let capacity = 10_000
    private(set) var events: [MigrationEvent] = []
    private struct Waiter {
        let id: Int
        let predicate: @Sendable ([MigrationEvent]) -> Bool
        let continuation: CheckedContinuation<Bool, Never>
    }
    private var waiters: [Waiter] = []
    private var nextWaiter = 0

    func append(_ event: MigrationEvent) {
        events.append(event)
        if events.count > Self.capacity { events.removeFirst(events.count - Self.capacity) }
        let snapshot = events
        var remaining: [Waiter] = []
        for w in waiters {
            if w.predicate(snapshot) { w.continuation.resume(returning: true) } else { remaining.append(w) }
        }
        waiters = remaining
    }

    /// Returns true once `predicate` holds for the events so far, false when `timeout` passes first.
    func wait(until predicate: @escaping @Sendable ([MigrationEvent]) -> Bool, timeout: Duration) async -> Bool {
        if predicate(events) { return true }
        let id = nextWaiter
        nextWaiter += 1
        Task { [weak self] in
            try? await Task.sleep(for: timeout)
            await self?.expire(id)
        }
        return await withCheckedContinuation { waiters.append(Waiter(id: id, predicate: predicate, continuation: $0)) }
    }

    private func expire(_ id: Int) {
        guard let i = waiters.firstIndex(where: { $0.id == id }) else { return }
        waiters.remove(at: i).continuation.resume(returning: false)
    }
}
