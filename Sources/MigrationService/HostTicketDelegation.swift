import Foundation
import GSS
import Synchronization
import WindowsStatus

/// Rule A3 at the source, as Hyper-V behaves: a delegation change counts for this host only once it
/// has a new ticket of its own. The KDC's answer to a constrained-delegation request (S4U2Proxy to a
/// destination's migration service) is kept for as long as the host's current TGT — the one in its
/// ccache (`host-<fqdn>.ccache`) — lasts:
/// - a **granted** request: the user's proxy credential, which holds the service ticket the KDC
///   issued, is used again for that user and destination (MIT takes the cached ticket and does not
///   ask the KDC), so a removed entry keeps working;
/// - a **refused** request: the refusal is given again to that user for that destination without
///   asking the KDC, so an added entry does not count yet. (Per user: MIT's refusal does not say
///   whether the host's list or the user — a sensitive account, rule A4 — was the reason.)
///
/// A new host ticket ends both: `kdestroy` of the host ccache (`klist purge`), a restart of the
/// daemon, or the TGT's end (MIT then gets a new one from the client keytab). The host ticket is
/// told apart by its end time and the ccache file's version (inode, modification time), read
/// without a client keytab, so reading it never gets a ticket. With no ticket nothing is remembered.
final class HostTicketDelegation: Sendable {
    enum Answer {
        case granted(GSSCredential)
        case refused(MigrationServiceError)
    }

    /// One host TGT as the ccache holds it: its end (whole seconds since 1970) and the ccache file's
    /// inode and modification time (nanoseconds), which a new ticket written there changes.
    struct Ticket: Sendable, Hashable {
        var end: Double
        var inode: UInt64
        var modified: Int64

        /// The same ticket read twice: the same file version, the end a second apart at most (MIT
        /// counts the remaining lifetime in whole seconds).
        func isSame(as other: Ticket) -> Bool {
            inode == other.inode && modified == other.modified && abs(end - other.end) <= 1
        }
    }

    private struct State {
        /// The host TGT the answers were given with.
        var ticketEnd: Ticket?
        var granted: [Key: GSSCredential] = [:]
        var refused: [Key: MigrationServiceError] = [:]
    }

    private struct Key: Hashable {
        var user: String
        var destination: String
    }

    /// Answers kept at most (the oldest half is dropped beyond): users × destinations of one ticket's life.
    static let limit = 4096

    private let state = Mutex(State())

    /// The TGT in the host's ccache (nil: none, expired, or unreadable). Read from the ccache alone
    /// (the client keytab named as none, so no default client keytab gets a ticket here).
    static func hostTicketEnd(_ configuration: HostConfiguration) async -> Ticket? {
        let principal = MigrationServiceNames.hostPrincipal(fqdn: configuration.fqdn, realm: configuration.realm)
        let path = "\(configuration.ccacheDirectory)/host-\(configuration.fqdn).ccache"
        let store = GSSCredentialStore(ccache: "FILE:" + path, clientKeytab: "FILE:/dev/null")
        do throws(GSSError) {
            let name = try GSSName(principal: principal)
            let credential = try await GSSCredential.acquire(name: name, usage: .initiate, from: store)
            guard let lifetime = try credential.inquire().lifetime, lifetime > .zero else { return nil }
            var info = stat()
            guard stat(path, &info) == 0 else { return nil }
            // MIT counts the remaining lifetime in whole seconds from time(2): now + remaining is the
            // ticket's end, give or take the second ticking between the two reads.
            let end = Date().timeIntervalSince1970.rounded(.down) + Double(lifetime.components.seconds)
            return Ticket(end: end, inode: UInt64(info.st_ino),
                          modified: Int64(info.st_mtim.tv_sec) &* 1_000_000_000 &+ Int64(info.st_mtim.tv_nsec))
        } catch {
            return nil
        }
    }

    /// What was answered with the host's current ticket for `user` moving to `destination`, or nil.
    func answer(user: String, destination: String, ticketEnd: Ticket?) -> Answer? {
        state.withLock { s in
            guard let ticketEnd, let kept = s.ticketEnd, kept.isSame(as: ticketEnd) else {
                s = State(ticketEnd: ticketEnd)
                return nil
            }
            let key = Key(user: user, destination: destination.lowercased())
            if let refusal = s.refused[key] { return .refused(refusal) }
            return s.granted[key].map(Answer.granted)
        }
    }

    /// Keeps the KDC's answer, given with the ticket that ends at `ticketEnd`.
    func record(_ answer: Answer, user: String, destination: String, ticketEnd: Ticket?) {
        guard let ticketEnd else { return }
        state.withLock { s in
            if let kept = s.ticketEnd, !kept.isSame(as: ticketEnd) { s = State(ticketEnd: ticketEnd) }
            s.ticketEnd = ticketEnd
            if s.granted.count + s.refused.count >= Self.limit { s = State(ticketEnd: ticketEnd) }
            switch answer {
            case .granted(let credential): s.granted[Key(user: user, destination: destination.lowercased())] = credential
            case .refused(let error): s.refused[Key(user: user, destination: destination.lowercased())] = error
            }
        }
    }

    /// Forgets everything (the host's ticket was replaced).
    func forget() { state.withLock { $0 = State() } }

    /// Whether a move's failure is the KDC refusing constrained delegation to the destination (what A3 keeps).
    static func isDelegationRefusal(_ error: MigrationServiceError) -> Bool {
        error.kind == .authentication && error.stage == .source && error.status == .noCredentials && error.gssError != nil
    }

}
