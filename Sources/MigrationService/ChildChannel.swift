import NIOCore
import Synchronization

/// A server child's async channel that is safe to drop unused.
///
/// NIO stops the process (a precondition in `NIOAsyncWriter`'s deinit) when an `NIOAsyncChannel`
/// made with `wrappingChannelSynchronously:` goes away before it was used: that happens when a
/// connection is accepted while the server closes — the server's stream drops the child, then the
/// child becomes active and the last reference to its writer goes. A child that nobody ``claim()``ed
/// is closed through `executeThenClose` instead (which finishes its writer), so a daemon that stops
/// while peers connect exits cleanly.
package final class ChildChannel<Inbound: Sendable, Outbound: Sendable>: Sendable {
    private let channel: NIOAsyncChannel<Inbound, Outbound>
    private let claimed = Atomic<Bool>(false)

    package init(_ channel: NIOAsyncChannel<Inbound, Outbound>) { self.channel = channel }

    /// The channel, to be used with `executeThenClose`; after this the owner is the caller.
    package func claim() -> NIOAsyncChannel<Inbound, Outbound> {
        claimed.store(true, ordering: .releasing)
        return channel
    }

    /// The underlying NIO channel (to close it, or to read its addresses).
    package var nioChannel: any Channel { channel.channel }

    deinit {
        guard !claimed.load(ordering: .acquiring) else { return }
        let channel = self.channel
        Task { try? await channel.executeThenClose { _, _ in } }
    }
}
