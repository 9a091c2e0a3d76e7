import Foundation
import GSS
import Logging
import NIOCore
import QEMU
import Synchronization
import MigrationVocabulary
import WindowsStatus

/// The destination's migration listener: authenticates the source's user with Kerberos (mutual),
/// enforces N1 (incoming networks), P1 (allowed users) and N2 (simultaneous migrations, the rest
/// wait), receives the VM's state file sealed in chunks, verifies it (SHA-256) and registers it
/// atomically on commit. Nothing half-written is ever registered.
public final class MigrationDestination: Sendable {
    let state: Mutex<State>
    private let listenerSlot = ListenerSlot()
    let slots: MigrationSlots
    let log = EventLog()
    let logger: Logger
    private let handshakeTimeout: Duration
    /// The host's QEMU guests: live migrations arrive into them (nil: this destination takes state files only).
    public let guests: QEMUGuests?

    struct State {
        var configuration: DestinationConfiguration
        var active: [MigrationID: IncomingMigration] = [:]
        var inFlight: Set<String> = []
        /// CredSSP's TLS certificate; nil: only Kerberos hellos are accepted.
        var identity: ServiceTLSIdentity?
        /// Versions and protection suites offered to sources.
        var settings = ProtocolSettings()
        /// Live moves being received, until they end (CommitOutcome.swift).
        var liveGates: [MigrationID: LiveCommitGate] = [:]
        /// Live moves being received, for their multifd channels to join.
        var live: [MigrationID: IncomingLive] = [:]
        /// Live moves an outcome query ended before their `commit`: a `commit` of one is refused.
        var fenced: Set<MigrationID> = []
    }

    /// A connection must authenticate within `handshakeTimeout` of being accepted, or it is closed.
    public init(configuration: DestinationConfiguration, logger: Logger = Logger(label: "MigrationDestination"),
                handshakeTimeout: Duration = .seconds(30), guests: QEMUGuests? = nil) {
        self.handshakeTimeout = handshakeTimeout
        self.guests = guests
        state = Mutex(State(configuration: configuration))
        slots = MigrationSlots(limit: configuration.maximumMigrations)
        self.logger = logger
    }

    /// The configuration in force.
    public var configuration: DestinationConfiguration { state.withLock { $0.configuration } }

    /// Replaces the configuration (P1, N1, N2 apply to the next connection; a higher N2 limit
    /// admits waiting migrations at once).
    public func update(_ configuration: DestinationConfiguration) async {
        // One step on the slots' actor: concurrent updates cannot leave one's configuration with
        // another's N2 limit.
        await slots.setLimit(configuration.maximumMigrations) { self.state.withLock { $0.configuration = configuration } }
    }

    /// Accepts CredSSP migration connections (the source delivers the user's password) with this TLS certificate.
    public func offerCredSSP(_ identity: ServiceTLSIdentity) {
        state.withLock { $0.identity = identity }
    }

    /// The protection suites offered to sources, in order of preference (default: suite 2, then suite 1).
    public func offerSuites(_ suites: [ProtectionSuite]) {
        state.withLock { $0.settings.suites = suites }
    }

    /// Protocol versions, suites and rekey interval (tests: a version-1-only destination, rekeying).
    func setProtocol(_ settings: ProtocolSettings) {
        state.withLock { $0.settings = settings }
    }

    /// Binds `endpoint` (port 0: any free port) and accepts migrations. Returns the bound endpoint.
    @discardableResult
    public func start(on endpoint: ServiceEndpoint) async throws(MigrationServiceError) -> ServiceEndpoint {
        let store = VMStore(directory: configuration.vmDirectory)
        try store.makeDirectories()
        store.clearStaging()
        LiveCommitRecords(vmDirectory: configuration.vmDirectory).prune()
        await slots.open()
        let listener = try await Listener.start(on: endpoint, stage: .destination, handshakeTimeout: handshakeTimeout,
                                               limits: { [weak self] in self?.configuration.limits ?? .default }) { conn in
            await self.handle(conn)
        }
        listenerSlot.set(listener)
        logger.info("migration listener on \(listener.endpoint)")
        return listener.endpoint
    }

    /// The bound endpoint, once started.
    public var endpoint: ServiceEndpoint? { listenerSlot.endpoint }

    /// Connections that have not authenticated yet (limits.maximumUnauthenticatedConnections caps them).
    var unauthenticatedConnections: Int { listenerSlot.unauthenticatedConnections }

    /// Stops listening and closes open connections (their migrations fail and are cleaned up).
    public func stop() async {
        await slots.close()
        await listenerSlot.stop()
    }

    /// Everything that happened so far, in order.
    public func events() async -> [MigrationEvent] { await log.events }

    /// Returns true once `predicate` holds for the events so far; false if `timeout` passes first (a test
    /// waiting for an event that never comes fails instead of hanging).
    @discardableResult
    public func waitForEvents(timeout: Duration = .seconds(120),
                              _ predicate: @escaping @Sendable ([MigrationEvent]) -> Bool) async -> Bool {
        await log.wait(until: predicate, timeout: timeout)
    }

    // MARK: Connections

    private func handle(_ conn: FrameConnection) async {
        let configuration = self.configuration
        // P3: migration enabled.
        guard configuration.migrationEnabled else {
            await conn.sendError(.failure(.configuration, .notSupported, stage: .destination,
                                          reason: "Live migration is not enabled on host \(configuration.hostName)"))
            return
        }
        // N1: before authentication.
        let local = conn.localAddress?.ipAddress ?? "?"
        guard configuration.acceptsNetwork(local) else {
            let error = MigrationServiceError.connection(.connection, .connectionRefused, destination: configuration.hostName,
                                                         detail: "\(local) is not inside \(configuration.hostName)'s incoming migration networks (rule N1)")
            await log.append(.refused(localAddress: local, status: .connectionRefused))
            await conn.sendError(error)
            return
        }
        guard let (peer, purpose) = await authenticate(conn, configuration: configuration) else { return }
        if purpose == .outcome {
            await answerOutcome(conn, principal: peer.principal, configuration: configuration)
            return
        }
        // P1.
        guard configuration.allows(peer.principal) else {
            let error = MigrationServiceError(kind: .authorization, status: .accessDenied, stage: .destination,
                                              message: MigrationMessages.permissionDenied(user: configuration.displayName(of: peer.principal),
                                                                                          host: configuration.hostName,
                                                                                          stage: .destination),
                                              detail: "not in the allowed users of \(configuration.hostName) (rule P1)")
            await log.append(.denied(user: peer.principal, status: .accessDenied))
            await conn.sendError(error)
            return
        }
        do throws(MigrationServiceError) {
            try await conn.send(.authResult(principal: peer.principal, server: configuration.fqdn))
            let binding = conn.negotiation.map { $0.version >= 2 ? $0.binding : nil } ?? nil
            switch try await conn.receive() {
            case .offer(let offer):
                // Version 2: the connection's keys are bound to this migration and channel 0.
                if let binding, binding != ConnectionBinding(migrationID: offer.id, channel: 0) {
                    throw MigrationServiceError.protocolViolation("the offer is not for the migration the connection was opened for",
                                                                  stage: .destination)
                }
                try await receiveMigration(offer, user: peer.principal, conn: conn, configuration: configuration)
            case .join(let id, let channel):
                if let binding, binding != ConnectionBinding(migrationID: id, channel: channel) {
                    throw MigrationServiceError.protocolViolation("the join is not for the migration and channel the connection was opened for",
                                                                  stage: .destination)
                }
                try await joinMigration(id, channel: channel, user: peer.principal, conn: conn)
            default:
                throw MigrationServiceError.protocolViolation("expected an offer or a join", stage: .destination)
            }
        } catch {
            logger.log(level: error.kind == .connectionLost ? .debug : .info, "migration connection failed: \(PeerText.forLog("\(error)"))")
            if !conn.sentError { await conn.sendError(error) }
        }
    }

    /// The handshake (Kerberos, or CredSSP when this host has a TLS identity): the authenticated peer and what the
    /// connection is for; nil when it failed (logged, and counted when authentication failed).
    private func authenticate(_ conn: FrameConnection,
                              configuration: DestinationConfiguration) async -> (KerberosHandshake.Peer, ConnectionPurpose)? {
        do throws(MigrationServiceError) {
            let principal = configuration.servicePrincipal
            let keytab = configuration.keytab
            let (identity, offered) = state.withLock { ($0.identity, $0.settings) }
            // The configuration's protection policy narrows what this end offers (protocol 1, suite 1 refused).
            guard let settings = configuration.protection.restrict(offered) else {
                throw MigrationServiceError.failure(.authentication, .algorithmMismatch, stage: .destination,
                                                    reason: "No protection suite is both offered and allowed on \(configuration.hostName)",
                                                    detail: "offered \(offered.suites.map(\.rawValue)), allowed \(configuration.protection.suites.map(\.rawValue))")
            }
            conn.settings = settings
            // A keytab read: on GSS's blocking pool, not Swift's.
            let acceptor = { @Sendable (mechanisms: [GSSMechanism]) async throws(GSSError) -> GSSCredential in
                try await GSSCredential.acquire(name: GSSName(principal: principal), usage: .accept, mechanisms: mechanisms,
                                                from: GSSCredentialStore(keytab: keytab))
            }
            // Purpose 3 (protocol version 3): a source asking what became of a live move (Kerberos only).
            let (kind, asked) = try await KerberosHandshake.serverHello(
                conn, purposes: [.migration: identity == nil ? [.kerberos] : [.kerberos, .credSSP], .outcome: [.kerberos]])
            if kind == .credSSP, let identity {
                // The delivered credentials are checked with the KDC and not kept: the user is authorized as today (P1).
                let user = try await CredSSPHandshake.server(conn, identity: identity, realm: configuration.realm ?? "",
                                                             credential: acceptor)
                user.wipe()
                return (KerberosHandshake.Peer(principal: user.principal, delegatedCredential: nil), asked)
            }
            return (try await KerberosHandshake.server(conn) { () async throws(GSSError) in try await acceptor([.kerberos]) }, asked)
        } catch {
            if error.kind == .authentication { await log.append(.authenticationFailed(status: error.status)) }
            logger.info("handshake failed: \(PeerText.forLog(error.detail))")
            return nil
        }
    }

    private func receiveMigration(_ offer: MigrationOffer, user: String, conn: FrameConnection,
                                  configuration: DestinationConfiguration) async throws(MigrationServiceError) {
        try Self.checkGeneration(offer, configuration: configuration)
        if offer.kind == .qemuLive {
            try await receiveLive(offer, user: user, conn: conn, configuration: configuration)
            return
        }
        try VMStore.checkName(offer.vm, stage: .destination)
        guard offer.sha256.count == 32, offer.chunkSize >= 1, Int(offer.chunkSize) <= WireProtocol.maximumChunkSize,
              (1...WireProtocol.maximumChannels).contains(Int(offer.channels)),
              offer.performance == .smb || offer.channels == 1 else {
            throw MigrationServiceError.protocolViolation("bad offer (chunk size \(offer.chunkSize), \(offer.channels) channels)",
                                                          stage: .destination)
        }
        await log.append(.offered(vm: offer.vm, user: user))
        let store = VMStore(directory: configuration.vmDirectory)
        try store.checkSpace(for: offer.vm, size: offer.size, reserve: configuration.limits.freeSpaceReserve, stage: .destination)
        let reserved = state.withLock { s in s.active[offer.id] == nil && s.inFlight.insert(offer.vm).inserted }
        guard reserved, !store.contains(offer.vm) else {
            if reserved { _ = state.withLock { $0.inFlight.remove(offer.vm) } }
            throw MigrationServiceError.failure(.storage, .alreadyExists, stage: .destination,
                                                reason: "A virtual machine named '\(offer.vm)' already exists on \(configuration.hostName)")
        }
        let staging = "\(store.stagingDirectory)/\(offer.vm).\(offer.id).partial"
        var incoming: IncomingMigration? = nil
        var holdsSlot = false
        do throws(MigrationServiceError) {
            try await waitForSlot(offer, conn: conn)
            holdsSlot = true
            let file = try VMFile.create(staging, size: offer.size, stage: .destination)
            let migration = IncomingMigration(offer: offer, user: user, file: file)
            incoming = migration
            state.withLock { $0.active[offer.id] = migration }
            await log.append(.started(vm: offer.vm, user: user))
            try await conn.send(.ready)
            // Progress timeout (limits.progressTimeout): a stalled source cannot hold the slot.
            migration.watch.add(conn)
            let watch = migration.watch, timeout = configuration.limits.progressTimeout
            let watchdog = Task { await watch.run(timeout: timeout) }
            defer { watchdog.cancel() }
            try await ChunkReceiver(conn: conn, migration: migration, channel: 0).run()
            guard case .commit = try await conn.receive() else {
                throw MigrationServiceError.protocolViolation("expected commit", stage: .destination)
            }
            watchdog.cancel()
            try migration.verifyComplete()
            try await Self.register(file, as: offer, from: staging, in: store, version: conn.version)
            migration.finish()
            await log.append(.committed(vm: offer.vm, bytes: offer.size))
            try? await conn.send(.committed)
        } catch {
            incoming?.fail(error)
            if incoming?.watch.timedOut == true {
                logger.info("migration of '\(offer.vm)' made no progress for \(configuration.limits.progressTimeout) s: closed")
            }
            unlink(staging)
            await log.append(.failed(vm: offer.vm, status: error.status, detail: error.detail))
            await cleanUp(offer, holdsSlot: holdsSlot)
            throw error
        }
        await cleanUp(offer, holdsSlot: holdsSlot)
    }

    /// Rule P4: no down-level moves (Hyper-V refuses a VM from a later generation at the destination), for a
    /// running guest as for a state file.
    private static func checkGeneration(_ offer: MigrationOffer, configuration: DestinationConfiguration) throws(MigrationServiceError) {
        if let mine = configuration.osGeneration, let sent = offer.sourceGeneration {
            guard let theirs = OSGeneration(rawValue: sent) else {
                throw MigrationServiceError.protocolViolation("unknown source generation \(sent)", stage: .destination)
            }
            if mine < theirs {
                throw MigrationServiceError.failure(.configuration, .notSupported, stage: .destination,
                                                    reason: MigrationMessages.downLevelMove(vm: offer.vm, host: configuration.hostName),
                                                    detail: "the source runs \(theirs), \(configuration.hostName) runs \(mine) (rule P4)")
            }
        }
    }

    /// Checks the staged file (synced; its SHA-256 when the offer carries one) and registers it under the VM's
    /// name: linked into place, never over an existing VM, then the staging name dropped.
    private static func register(_ file: VMFile, as offer: MigrationOffer, from staging: String, in store: VMStore,
                                 version: UInt16) async throws(MigrationServiceError) {
        // Protocol 1 (and a protocol 2 source that sends one anyway) offers the file's SHA-256: one pass
        // over the staged file. Protocol 2 offers none: every chunk was authenticated and the chunks
        // tiled the file exactly once (ChunkReceiver), so nothing is read back.
        let verifyDigest = version < 2 || offer.sha256 != WireProtocol.noDigest
        let digest = try await FileWork.run(.destination) { () throws(MigrationServiceError) -> [UInt8]? in
            try file.sync(stage: .destination)
            return verifyDigest ? try file.sha256(stage: .destination) : nil
        }
        guard digest == nil || digest == offer.sha256 else {
            throw MigrationServiceError.failure(.integrity, .crcError, stage: .destination,
                                                reason: "The virtual machine '\(offer.vm)' did not arrive intact",
                                                detail: "SHA-256 of the received file differs from the offer")
        }
        // Register: link into place (never over an existing VM), then drop the staging name.
        guard link(staging, store.path(of: offer.vm)) == 0 else {
            throw MigrationServiceError.failure(.storage, errno == EEXIST ? .alreadyExists : .unspecifiedFailure,
                                                stage: .destination, reason: "Could not register '\(offer.vm)'",
                                                detail: String(cString: strerror(errno)))
        }
        unlink(staging)
        syncDirectory(store.directory)
    }

    func cleanUp(_ offer: MigrationOffer, holdsSlot: Bool) async {
        state.withLock { s in
            s.active[offer.id] = nil
            s.liveGates[offer.id] = nil
            s.live[offer.id] = nil
            s.inFlight.remove(offer.vm)
        }
        if holdsSlot { await slots.release() } else { await slots.leave(offer.id) }
    }

    private func joinMigration(_ id: MigrationID, channel: UInt8, user: String, conn: FrameConnection) async throws(MigrationServiceError) {
        if let live = state.withLock({ $0.live[id] }) {
            try await joinLive(live, channel: channel, user: user, conn: conn)
            return
        }
        guard let migration = state.withLock({ $0.active[id] }) else {
            throw MigrationServiceError.protocolViolation("no migration \(id) to join", stage: .destination)
        }
        guard migration.user == user else {
            throw MigrationServiceError.failure(.authorization, .accessDenied, stage: .destination,
                                                reason: "Channel \(channel) of '\(migration.offer.vm)' was opened by another user")
        }
        try migration.join(channel)
        await log.append(.channelJoined(vm: migration.offer.vm, channel: Int(channel)))
        do throws(MigrationServiceError) {
            try await conn.send(.ready)
            migration.watch.add(conn)
            try await ChunkReceiver(conn: conn, migration: migration, channel: channel).run()
        } catch {
            migration.fail(error)
            throw error
        }
    }
}

/// One migration being received: its staging file and what its channels have delivered.
extension MigrationDestination {
    /// N2: takes a migration slot for `offer`, waiting in line while the limit is reached; the
    /// source hears its position. Throws when the destination stops while the move waits.
    func waitForSlot(_ offer: MigrationOffer, conn: FrameConnection) async throws(MigrationServiceError) {
        let position = await slots.enter(offer.id)
        guard position > 0 else { return }
        await log.append(.queued(vm: offer.vm, position: position))
        try await conn.send(.queued(position: UInt32(position)))
        guard await slots.waitTurn(offer.id) else {
            throw MigrationServiceError.connectionLost("the destination is stopping", stage: .destination)
        }
    }
}

final class IncomingMigration: Sendable {
    let offer: MigrationOffer
    let user: String
    let file: VMFile
    /// The progress timeout's view of the migration's connections.
    let watch = ProgressWatch()
    private let progress = Mutex(Progress())

    private struct Progress {
        var joined: Set<UInt8> = [0]
        var done: Set<UInt8> = []
        var bytes: UInt64 = 0
        var failure: MigrationServiceError?
        var finished = false
    }

    init(offer: MigrationOffer, user: String, file: VMFile) {
        self.offer = offer
        self.user = user
        self.file = file
    }

    func join(_ channel: UInt8) throws(MigrationServiceError) {
        let ok = progress.withLock { p in
            p.failure == nil && !p.finished && channel < offer.channels && p.joined.insert(channel).inserted
        }
        guard ok else {
            throw MigrationServiceError.protocolViolation("channel \(channel) cannot join '\(offer.vm)'", stage: .destination)
        }
    }

    func add(_ bytes: UInt64) throws(MigrationServiceError) {
        let failure = progress.withLock { p -> MigrationServiceError? in
            p.bytes += bytes
            return p.failure
        }
        if let failure { throw failure }
    }

    func channelDone(_ channel: UInt8) {
        _ = progress.withLock { $0.done.insert(channel) }
    }

    func verifyComplete() throws(MigrationServiceError) {
        let (done, bytes, failure) = progress.withLock { ($0.done.count, $0.bytes, $0.failure) }
        if let failure { throw failure }
        guard done == Int(offer.channels), bytes == offer.size else {
            throw MigrationServiceError.failure(.integrity, .crcError, stage: .destination,
                                                reason: "The virtual machine '\(offer.vm)' did not arrive completely",
                                                detail: "\(done) of \(offer.channels) channels done, \(bytes) of \(offer.size) bytes")
        }
    }

    func fail(_ error: MigrationServiceError) {
        progress.withLock { if $0.failure == nil { $0.failure = error } }
    }

    func finish() { progress.withLock { $0.finished = true } }
}

/// Receives one channel's chunks into the staging file, checking order, bounds and sizes. Unsealing and
/// writing overlap: each chunk's `pwrite` runs on the blocking pool (``FileWork``) while the next frame
/// is unsealed, with at most ``writeDepth`` writes outstanding (a slow disk slows the channel, nothing
/// more is buffered).
struct ChunkReceiver {
    let conn: FrameConnection
    let migration: IncomingMigration
    let channel: UInt8

    /// Chunks unsealed but not yet written, per channel (the bounded queue between unsealing and writing).
    static let writeDepth = 4

    func run() async throws(MigrationServiceError) {
        let offer = migration.offer
        let decompressor = try ChunkDecompressor(zstd: ChunkCodec.usesZstd(conn.negotiation), allocator: conn.allocator)
        // Protocol 2: chunk `s` of channel `c` is chunk index `c + s·channels` of the file, whole — with the
        // totals checked at the commit, the chunks tile the file exactly once.
        let tiled = conn.version >= 2
        var writes: [FileWork.Pending<Void>] = []
        writes.reserveCapacity(Self.writeDepth)
        let file = migration.file
        do throws(MigrationServiceError) {
            try await receive(offer: offer, tiled: tiled, decompressor: decompressor, file: file, writes: &writes)
        } catch {
            // A failed channel lets its outstanding writes finish first: none of them may still hold the
            // staging file (or write into it) once the migration is cleaned up.
            for write in writes { _ = try? await FileWork.finish(write, stage: .destination) }
            throw error
        }
    }

    private func receive(offer: MigrationOffer, tiled: Bool, decompressor: ChunkDecompressor, file: VMFile,
                         writes: inout [FileWork.Pending<Void>]) async throws(MigrationServiceError) {
        var expected: UInt32 = 0
        var bytes: UInt64 = 0
        while true {
            switch try await conn.receive() {
            case .chunk(let header, let data):
                guard header.sequence == expected else {
                    throw MigrationServiceError.failure(.integrity, .outOfSequence, stage: .destination,
                                                        reason: "A migration chunk arrived out of sequence",
                                                        detail: "chunk \(header.sequence), expected \(expected)")
                }
                guard header.length <= offer.chunkSize, header.length > 0,
                      header.offset <= offer.size, UInt64(header.length) <= offer.size - header.offset else {
                    throw MigrationServiceError.protocolViolation("chunk \(header.sequence) outside the file", stage: .destination)
                }
                if tiled {
                    let index = UInt64(channel) + UInt64(expected) * UInt64(offer.channels)
                    let (start, overflow) = index.multipliedReportingOverflow(by: UInt64(offer.chunkSize))
                    guard !overflow, header.offset == start,
                          UInt64(header.length) == min(UInt64(offer.chunkSize), offer.size - start) else {
                        throw MigrationServiceError.protocolViolation(
                            "chunk \(header.sequence) of channel \(channel) is not chunk \(index) of the file (offset \(header.offset), length \(header.length))",
                            stage: .destination)
                    }
                }
                let plain = try decompressor.decode(header, data)
                let offset = header.offset
                writes.append(FileWork.start(.destination) { () throws(MigrationServiceError) in
                    try file.write(plain, offset: offset, stage: .destination)
                })
                if writes.count >= Self.writeDepth {
                    try await FileWork.finish(writes.removeFirst(), stage: .destination)
                }
                expected &+= 1
                bytes += UInt64(header.length)
                try migration.add(UInt64(header.length))
            case .channelDone(let chunks, let total):
                // Everything of this channel is on the file before its channelDone is echoed.
                while !writes.isEmpty { try await FileWork.finish(writes.removeFirst(), stage: .destination) }
                guard chunks == expected, total == bytes else {
                    throw MigrationServiceError.protocolViolation("channel \(channel) ended after \(chunks) chunks/\(total) bytes, received \(expected)/\(bytes)",
                                                                  stage: .destination)
                }
                migration.channelDone(channel)
                try await conn.send(.channelDone(chunks: chunks, bytes: total))
                return
            default:
                throw MigrationServiceError.protocolViolation("expected a chunk", stage: .destination)
            }
        }
    }
}
