/// Rule N2: at most `limit` migrations at once; further ones wait in line (first come, first
/// served) and then run.
actor MigrationSlots {
    private var limit: Int
    private var running = 0
    private var queue: [MigrationID] = []
    private var granted: Set<MigrationID> = []
    private var continuations: [MigrationID: CheckedContinuation<Bool, Never>] = [:]
    private var closed = false

    init(limit: Int) { self.limit = max(1, limit) }

    /// Takes a slot now (returns 0) or joins the queue (returns the 1-based position).
    func enter(_ id: MigrationID) -> Int {
        if running < limit && queue.isEmpty {
            running += 1
            return 0
        }
        queue.append(id)
        return queue.count
    }

    /// Waits until a queued migration gets its slot (true), or the host stops (false).
    func waitTurn(_ id: MigrationID) async -> Bool {
        if granted.remove(id) != nil { return true }
        guard !closed, queue.contains(id) else { return false }
        return await withCheckedContinuation { continuations[id] = $0 }
    }

    /// The host stops: every waiting migration gives up; new ones wait until `open()`.
    func close() {
        closed = true
        queue.removeAll()
        for c in continuations.values { c.resume(returning: false) }
        continuations = [:]
    }

    /// Accepts waiting migrations again (after `close()`).
    func open() { closed = false }

    /// Gives a slot back (a migration ended) and lets the next one run.
    func release() {
        running = max(0, running - 1)
        admit()
    }

    /// Removes a migration that stopped waiting.
    func leave(_ id: MigrationID) {
        queue.removeAll { $0 == id }
        continuations.removeValue(forKey: id)?.resume(returning: false)
        if granted.remove(id) != nil { release() }
    }

    /// A new limit (configuration reload); more room admits waiting migrations. `commit` runs in
    /// the same actor turn (it stores the configuration the limit comes from), so updates apply
    /// the configuration and its limit together, in one order.
    func setLimit(_ n: Int, committing commit: @Sendable () -> Void = {}) {
        commit()
        limit = max(1, n)
        admit()
    }

    private func admit() {
        while running < limit, !queue.isEmpty {
            let next = queue.removeFirst()
            running += 1
            if let c = continuations.removeValue(forKey: next) { c.resume(returning: true) } else { granted.insert(next) }
        }
    }
}
