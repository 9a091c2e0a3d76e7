import Synchronization

/// Keeps at most one idle OpenSSL context (`EVP_CIPHER_CTX`, `EVP_MAC_CTX`) per slot, so a
/// per-message call reuses a keyed context instead of setting one up. A context is owned by
/// exactly one party at a time: the pool while idle (under its mutex), the caller between
/// ``take(_:)`` and ``giveBack(_:to:)``.
final class IdleContexts: Sendable {
    /// An idle context crossing the mutex; `@unchecked` because OpenSSL pointers are not
    /// `Sendable`, and only one party ever holds a given context.
    private struct Slot: @unchecked Sendable {
        var context: OpaquePointer?
    }

    private let slots: Mutex<[Slot]>

    init(slots count: Int) { slots = Mutex(Array(repeating: Slot(context: nil), count: count)) }

    /// The idle context of `slot`, now the caller's; nil when there is none.
    func take(_ slot: Int) -> OpaquePointer? {
        slots.withLock { slots in
            let taken = slots[slot]
            slots[slot].context = nil
            return taken
        }.context
    }

    /// Keeps `context` as `slot`'s idle context. False when the slot is occupied: the caller
    /// still owns `context` and frees it.
    func giveBack(_ context: OpaquePointer, to slot: Int) -> Bool {
        let handed = Slot(context: context)
        return slots.withLock { slots in
            guard slots[slot].context == nil else { return false }
            slots[slot] = handed
            return true
        }
    }

    /// Every idle context, now the caller's (to free them).
    func drain() -> [OpaquePointer] {
        slots.withLock { slots in
            let all = slots
            for i in slots.indices { slots[i].context = nil }
            return all
        }.compactMap(\.context)
    }
}
