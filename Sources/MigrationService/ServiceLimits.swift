import NIOCore
import Synchronization

/// Limits that keep a daemon safe to expose to peers that have not (yet) authenticated, and to
/// authenticated peers that stall. The `limits` object of a host configuration; every key is optional.
public struct ServiceLimits: Sendable, Hashable, Codable {
    /// Bytes that must stay free on the VM directory's file system after an incoming VM is
    /// accepted (checked with `statvfs` before the offer is answered; ERROR_DISK_FULL otherwise).
    public var freeSpaceReserve: UInt64
    /// Connections that have not authenticated yet, per listener; more are closed at once.
    public var maximumUnauthenticatedConnections: Int
    /// Connections that have not authenticated yet from one peer address, per listener.
    public var maximumUnauthenticatedConnectionsPerAddress: Int
    /// Largest frame accepted before the peer has authenticated (hello, tokens, CredSSP's TLS records);
    /// after authentication the protocol's limit (4 MiB + 64 KiB) applies.
    public var maximumUnauthenticatedFrameLength: Int
    /// Seconds an incoming migration may go without a frame arriving on any of its connections while the
    /// destination waits for chunks or the commit; then its connections are closed, the migration fails
    /// and its N2 slot is free.
    public var progressTimeout: Double

    /// Defaults: 64 MiB reserve, 64 unauthenticated connections (16 per address), 64 KiB frames before
    /// authentication, 60 s progress timeout.
    public init(freeSpaceReserve: UInt64 = 64 * 1024 * 1024, maximumUnauthenticatedConnections: Int = 64,
                maximumUnauthenticatedConnectionsPerAddress: Int = 16, maximumUnauthenticatedFrameLength: Int = 64 * 1024,
                progressTimeout: Double = 60) {
        self.freeSpaceReserve = freeSpaceReserve
        self.maximumUnauthenticatedConnections = maximumUnauthenticatedConnections
        self.maximumUnauthenticatedConnectionsPerAddress = maximumUnauthenticatedConnectionsPerAddress
        self.maximumUnauthenticatedFrameLength = maximumUnauthenticatedFrameLength
        self.progressTimeout = progressTimeout
    }

    public static let `default` = ServiceLimits()

    private enum CodingKeys: String, CodingKey {
        case freeSpaceReserve, maximumUnauthenticatedConnections, maximumUnauthenticatedConnectionsPerAddress
        case maximumUnauthenticatedFrameLength, progressTimeout
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = ServiceLimits.default
        self.init(freeSpaceReserve: try c.decodeIfPresent(UInt64.self, forKey: .freeSpaceReserve) ?? d.freeSpaceReserve,
                  maximumUnauthenticatedConnections: try c.decodeIfPresent(Int.self, forKey: .maximumUnauthenticatedConnections)
                      ?? d.maximumUnauthenticatedConnections,
                  maximumUnauthenticatedConnectionsPerAddress: try c.decodeIfPresent(Int.self, forKey: .maximumUnauthenticatedConnectionsPerAddress)
                      ?? d.maximumUnauthenticatedConnectionsPerAddress,
                  maximumUnauthenticatedFrameLength: try c.decodeIfPresent(Int.self, forKey: .maximumUnauthenticatedFrameLength)
                      ?? d.maximumUnauthenticatedFrameLength,
                  progressTimeout: try c.decodeIfPresent(Double.self, forKey: .progressTimeout) ?? d.progressTimeout)
    }

    /// Every limit at least 1 (the frame limit at least 4 KiB, at most the protocol's), timeout above 0.
    public func validate() throws(MigrationServiceError) {
        guard maximumUnauthenticatedConnections >= 1, maximumUnauthenticatedConnectionsPerAddress >= 1 else {
            throw .configuration("limits: connection caps must be at least 1", stage: .source)
        }
        guard (4096...WireProtocol.maximumFrameLength).contains(maximumUnauthenticatedFrameLength) else {
            throw .configuration("limits.maximumUnauthenticatedFrameLength must be within 4096…\(WireProtocol.maximumFrameLength)",
                                 stage: .source)
        }
        guard progressTimeout > 0, progressTimeout <= 86_400 else {
            throw .configuration("limits.progressTimeout must be within 0…86400 seconds", stage: .source)
        }
    }
}

/// Counts a listener's unauthenticated connections, in total and per peer address.
final class Admission: Sendable {
    private struct Counts {
        var total = 0
        var perAddress: [String: Int] = [:]
    }
    private let counts = Mutex(Counts())

    /// Takes a place for a connection from `address`, or returns false when a cap is reached.
    func admit(_ address: String, limits: ServiceLimits) -> Bool {
        counts.withLock { c in
            guard c.total < limits.maximumUnauthenticatedConnections,
                  c.perAddress[address, default: 0] < limits.maximumUnauthenticatedConnectionsPerAddress else { return false }
            c.total += 1
            c.perAddress[address, default: 0] += 1
            return true
        }
    }

    /// Gives the place back (at authentication or when the connection ends, whichever comes first).
    func release(_ address: String) {
        counts.withLock { c in
            c.total -= 1
            let n = c.perAddress[address, default: 1] - 1
            c.perAddress[address] = n > 0 ? n : nil
        }
    }

    var unauthenticated: Int { counts.withLock { $0.total } }
}

/// The largest frame a connection's decoder accepts now: small until the peer authenticates.
final class FrameLimit: Sendable {
    private let value: Atomic<Int>
    init(_ initial: Int) { value = Atomic(initial) }
    var current: Int { value.load(ordering: .relaxed) }
    func set(_ n: Int) { value.store(n, ordering: .relaxed) }
}

/// When a connection last received bytes (uptime nanoseconds), stamped by ``ActivityStampHandler``.
final class ConnectionActivity: Sendable {
    private let last = Atomic<UInt64>(NIODeadline.now().uptimeNanoseconds)
    func stamp() { last.store(NIODeadline.now().uptimeNanoseconds, ordering: .relaxed) }
    var lastRead: UInt64 { last.load(ordering: .relaxed) }
}

/// First handler of a server connection: stamps ``ConnectionActivity`` on every read.
final class ActivityStampHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    let activity: ConnectionActivity
    init(_ activity: ConnectionActivity) { self.activity = activity }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        activity.stamp()
        context.fireChannelRead(data)
    }
}

/// A server connection's channel with its frame limit and activity stamp.
struct ServerChild: Sendable {
    /// Claimed by the listener's serve (``ChildChannel``: dropped unclaimed, it is closed, not a crash).
    let channel: ChildChannel<ByteBuffer, ByteBuffer>
    let limit: FrameLimit
    let activity: ConnectionActivity
    /// The peer's address (its place in ``Admission``).
    let peer: String
}

/// A connection over the unauthenticated caps (closed in the child initializer).
struct AdmissionRefused: Error {}

/// The progress timeout of one incoming migration: while the destination waits for its chunks and
/// commit, some frame must arrive on one of its connections at least every `timeout`; otherwise all of
/// them are closed (the migration fails, its staging file goes, its N2 slot is free).
final class ProgressWatch: Sendable {
    private struct Member {
        let activity: ConnectionActivity
        let close: @Sendable () -> Void
    }
    private let members = Mutex<[Member]>([])
    private let expired = Atomic<Bool>(false)

    /// Watches `conn` too (a server connection; client connections have no activity stamp).
    func add(_ conn: FrameConnection) {
        guard let activity = conn.activity, let close = conn.close else { return }
        activity.stamp()
        members.withLock { $0.append(Member(activity: activity, close: close)) }
    }

    /// Whether the timeout closed the connections.
    var timedOut: Bool { expired.load(ordering: .relaxed) }

    /// Checks until cancelled (a few times per timeout, at most every second).
    func run(timeout: Double) async {
        let limit = UInt64(timeout * 1e9)
        let period = Duration.milliseconds(Int64(min(1000, max(10, timeout * 250))))
        let started = NIODeadline.now().uptimeNanoseconds
        while !Task.isCancelled {
            try? await Task.sleep(for: period)
            if Task.isCancelled { return }
            let now = NIODeadline.now().uptimeNanoseconds
            let latest = max(started, members.withLock { $0.map(\.activity.lastRead).max() } ?? started)
            if now > latest, now - latest > limit {
                expired.store(true, ordering: .relaxed)
                for m in members.withLock({ $0 }) { m.close() }
                return
            }
        }
    }
}
