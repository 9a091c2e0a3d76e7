import Foundation
import NIOCore
import NIOPosix
import QEMU
import WindowsStatus

/// QEMU's migration stream carried over an authenticated connection (docs/migration-service.md, "Live
/// migration of a QEMU guest"): at the source QEMU writes it into a unix socket the daemon owns and the
/// daemon sends it as sealed `chunk`s (the same per-chunk protection as a state file); at the destination
/// the daemon feeds the unsealed bytes into the socket of a QEMU started with `-S -incoming defer`.
enum LiveStream {
    /// `max-bandwidth` for the source's QEMU (its 7.2 default, 32 MiB/s, would throttle the move).
    static let maximumBandwidth: UInt64 = 64 << 30
    /// How long to wait for QEMU to report the outcome of a migration whose stream has ended.
    static let completionTimeout: Duration = .seconds(120)

    /// The QEMU failure as a migration error at `stage`.
    static func failure(_ error: QEMUError, vm: String, stage: MigrationStage, what: String) -> MigrationServiceError {
        .failure(.storage, .unspecifiedFailure, stage: stage, reason: "\(what) of the virtual machine '\(vm)' failed",
                 detail: error.description)
    }

    /// Source: asks `guest` to migrate into a socket under `runDirectory` and sends everything QEMU writes as
    /// sealed chunks on `conn`. Returns (chunks, bytes) once QEMU has closed the stream and reports the
    /// migration `completed` (the guest is then paused in `postmigrate`).
    static func send(from guest: QEMUProcess, vm: String, id: MigrationID, runDirectory: String, conn: FrameConnection,
                     chunkSize: Int, sent: SentBytes) async throws(MigrationServiceError) -> (UInt32, UInt64) {
        let socketPath = "\(runDirectory)/out-\(id.description.prefix(12)).sock"
        defer { unlink(socketPath) }
        let server = try await bindStreamSocket(socketPath, vm: vm)
        do throws(QEMUError) {
            try await guest.qmp.execute("migrate-set-parameters", ["max-bandwidth": .number(Double(maximumBandwidth))])
            try await guest.qmp.execute("migrate", ["uri": .string("unix:\(socketPath)")])
        } catch {
            try? await server.channel.close()
            throw failure(error, vm: vm, stage: .source, what: "Starting the migration")
        }
        // Until QEMU connects, watch for a migration that failed before it could (the accept would wait forever).
        let watchdog = watchUntilConnected(guest, closing: server.channel)
        defer { watchdog.cancel() }
        let result: Result<(UInt32, UInt64), MigrationServiceError>
        do {
            result = try await server.executeThenClose { inbound in
                var connections = inbound.makeAsyncIterator()
                guard let stream = try await connections.next() else {
                    return .failure(MigrationServiceError.failure(.storage, .unspecifiedFailure, stage: .source,
                                                                  reason: "QEMU did not start the migration of '\(vm)'",
                                                                  detail: "its migration socket closed before QEMU connected"))
                }
                watchdog.cancel()
                return try await stream.executeThenClose { bytes, _ in
                    await relay(bytes, vm: vm, to: Chunker(conn: conn, chunkSize: chunkSize, sent: sent))
                }
            }
        } catch {
            throw .failure(.storage, .unspecifiedFailure, stage: .source, reason: "Reading the migration stream of '\(vm)' failed",
                           detail: "\(error)")
        }
        let counts = try result.get()
        // The stream ended: QEMU says whether that was the end of a migration or a failure.
        let status = try await waitForOutcome(guest, vm: vm, stage: .source)
        guard status == "completed" else {
            throw .failure(.storage, .unspecifiedFailure, stage: .source, reason: "QEMU could not migrate '\(vm)'",
                           detail: "query-migrate: \(status)")
        }
        return counts
    }

    /// The unix socket QEMU writes its migration stream into (one connection: QEMU's).
    private static func bindStreamSocket(_ socketPath: String, vm: String) async throws(MigrationServiceError)
        -> NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, Never>, Never> {
        do {
            return try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .childChannelOption(ChannelOptions.recvAllocator,
                                    value: AdaptiveRecvByteBufferAllocator(minimum: 64 << 10, initial: 1 << 20, maximum: 4 << 20))
                .bind(unixDomainSocketPath: socketPath, cleanupExistingSocketFile: true) { child in
                    child.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, Never>(wrappingChannelSynchronously: child)
                    }
                }
        } catch {
            throw .failure(.storage, .unspecifiedFailure, stage: .source, reason: "Could not open the migration socket of '\(vm)'",
                           detail: "\(socketPath): \(error)")
        }
    }

    /// Closes `server` when the guest's migration fails or its QEMU ends before QEMU connected; cancel it once
    /// QEMU has connected.
    private static func watchUntilConnected(_ guest: QEMUProcess, closing server: any Channel) -> Task<Void, Never> {
        Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(200))
                let status = (try? await guest.qmp.execute("query-migrate"))?["status"]?.string
                if status == "failed" || status == "cancelled" || !guest.isAlive {
                    try? await server.close()
                    return
                }
            }
        }
    }

    /// Sends everything QEMU writes as sealed chunks; the chunk and byte counts once QEMU closed the stream.
    private static func relay(_ bytes: NIOAsyncChannelInboundStream<ByteBuffer>, vm: String,
                              to chunker: Chunker) async -> Result<(UInt32, UInt64), MigrationServiceError> {
        var chunker = chunker
        var pieces = bytes.makeAsyncIterator()
        do throws(MigrationServiceError) {
            while true {
                let next: ByteBuffer?
                do {
                    next = try await pieces.next()
                } catch {
                    throw MigrationServiceError.failure(.storage, .unspecifiedFailure, stage: .source,
                                                        reason: "Reading the migration stream of '\(vm)' failed",
                                                        detail: "\(error)")
                }
                guard let piece = next else { break }
                try await chunker.append(piece)
            }
            try await chunker.flush()
            return .success((chunker.sequence, chunker.total))
        } catch {
            return .failure(error)
        }
    }

    /// Polls `query-migrate` until the migration is no longer under way; returns its status
    /// (`completed`, `failed`, `cancelled`, …).
    static func waitForOutcome(_ process: QEMUProcess, vm: String, stage: MigrationStage) async throws(MigrationServiceError) -> String {
        let clock = ContinuousClock()
        let deadline = clock.now + completionTimeout
        while clock.now < deadline {
            guard process.isAlive else {
                throw .failure(.storage, .unspecifiedFailure, stage: stage, reason: "The QEMU of '\(vm)' exited during the migration")
            }
            let reply: JSONValue
            do {
                reply = try await process.qmp.execute("query-migrate")
            } catch {
                throw failure(error, vm: vm, stage: stage, what: "The migration")
            }
            let status = reply["status"]?.string ?? "none"
            switch status {
            case "setup", "active", "device", "pre-switchover", "wait-unplug", "cancelling", "postcopy-active":
                try? await Task.sleep(for: .milliseconds(10))
            default:
                return status
            }
        }
        throw .failure(.storage, .connectionTimedOut, stage: stage, reason: "The migration of '\(vm)' did not finish",
                       detail: "query-migrate still active after \(completionTimeout)")
    }

    /// Source, after a failure before it let go: the guest must run here again. Cancels a migration under way,
    /// waits for QEMU to settle and resumes a paused guest (`cont`). Returns the guest's status afterwards.
    @discardableResult
    static func resume(_ guest: QEMUProcess) async -> String? {
        let status = (try? await guest.qmp.execute("query-migrate"))?["status"]?.string
        if let status, ["setup", "active", "device", "pre-switchover", "wait-unplug"].contains(status) {
            _ = try? await guest.qmp.execute("migrate_cancel")
            _ = try? await waitForOutcome(guest, vm: guest.name, stage: .source)
        }
        let run = try? await guest.status()
        if run != "running" { _ = try? await guest.qmp.execute("cont") }
        return try? await guest.status()
    }
}

/// Cuts QEMU's stream into chunks of `chunkSize` plaintext bytes: each is built straight after its
/// message header (`chunk` kind + `ChunkHeader`, offset = position in the stream) and sealed in place.
struct Chunker {
    let conn: FrameConnection
    let chunkSize: Int
    let sent: SentBytes
    private(set) var sequence: UInt32 = 0
    private(set) var total: UInt64 = 0
    private var plain: ByteBuffer
    private static let headerBytes = 1 + ChunkHeader.encodedSize

    init(conn: FrameConnection, chunkSize: Int, sent: SentBytes) {
        self.conn = conn
        self.chunkSize = chunkSize
        self.sent = sent
        plain = conn.allocator.buffer(capacity: Self.headerBytes + chunkSize + 64)
        startChunk()
    }

    private mutating func startChunk() {
        plain.clear()
        plain.writeInteger(WireMessage.Kind.chunk.rawValue)
        ChunkHeader(sequence: sequence, offset: total, length: 0, flags: 0).encode(into: &plain)
    }

    private var pending: Int { plain.readableBytes - Self.headerBytes }

    mutating func append(_ piece: ByteBuffer) async throws(MigrationServiceError) {
        var rest = piece
        while rest.readableBytes > 0 {
            let n = min(chunkSize - pending, rest.readableBytes)
            guard var slice = rest.readSlice(length: n) else { break }
            plain.writeBuffer(&slice)
            if pending == chunkSize { try await flush() }
        }
    }

    /// Sends what is buffered as one chunk (nothing when empty).
    mutating func flush() async throws(MigrationServiceError) {
        let length = pending
        guard length > 0 else { return }
        // The length field sits after kind (1), sequence (4) and offset (8).
        plain.setInteger(UInt32(length), at: plain.readerIndex + 1 + 4 + 8)
        try await conn.sendSealed(plaintext: &plain)
        sequence &+= 1
        total += UInt64(length)
        await sent.add(UInt64(length))
        plain = conn.allocator.buffer(capacity: Self.headerBytes + chunkSize + 64)
        startChunk()
    }
}

extension MigrationSource {
    /// The uncertain outcome: the link died after `commit` was sent and before `committed` arrived.
    static func uncertain(vm: String, destination: String, cause: MigrationServiceError, check: String) -> MigrationServiceError {
        .failure(.uncertain, cause.status, stage: .source,
                 reason: "The connection to \(destination) was lost while the move of '\(vm)' was being committed, so its outcome is uncertain",
                 detail: "\(check) (cause: \(cause.detail.isEmpty ? cause.message : cause.detail))")
    }

    /// P3: the guest of `vm`, which must be running here.
    private static func runningGuest(_ vm: String, in guests: QEMUGuests, host: String) async throws(MigrationServiceError) -> QEMUProcess {
        guard let guest = guests.process(vm), guest.isAlive else {
            throw .failure(.configuration, .invalidState, stage: .source,
                           reason: "The virtual machine '\(vm)' is not running on host \(host)",
                           detail: "its QEMU is not running (rule P3: only a running virtual machine can be live-migrated)")
        }
        let status = (try? await guest.status()) ?? "unreachable"
        guard status == "running" else {
            throw .failure(.configuration, .invalidState, stage: .source,
                           reason: "The virtual machine '\(vm)' is not running on host \(host)",
                           detail: "QMP status \(status) (rule P3: only a running virtual machine can be live-migrated)")
        }
        return guest
    }

    /// After a failed live move: the error to throw. `uncertain` (the commit was sent and not refused): the guest
    /// stays paused — the destination may be running it — and is marked so (its journal record stays, so a daemon's
    /// resolver asks the destination and resumes or quits it by the answer). Otherwise the guest runs here again.
    private static func recover(_ vm: String, _ guest: QEMUProcess, in guests: QEMUGuests, after error: MigrationServiceError,
                                uncertain: Bool, host: String, destination: String) async -> MigrationServiceError {
        if uncertain {
            guests.markUncertain(vm)
            let qmp = (try? await guest.status()) ?? "unknown"
            return Self.uncertain(vm: vm, destination: destination, cause: error,
                                  check: "'\(vm)' is paused on \(host) (QEMU pid \(guest.pid), QMP status \(qmp)). A migauth daemon asks "
                                      + "\(destination) for the outcome until it tells, then quits or resumes it here; otherwise check whether it "
                                      + "runs on \(destination): if it does, stop it here (QMP quit); if it does not, resume it here (QMP cont)")
        }
        // Before the switch-over (or the destination refused the commit): the guest runs here again. In a task of
        // its own, so that a move aborted by cancellation (a daemon shutting down) still waits for QEMU to settle
        // before `cont`.
        _ = await Task { await LiveStream.resume(guest) }.value
        return error
    }

    /// Live migration of a running QEMU guest (the caller holds the VM's move lock).
    func moveLive(vm: String, guests: QEMUGuests, to target: MigrationTarget, authentication: MigrationAuthentication,
                  options: MoveOptions) async throws(MigrationServiceError) -> MigrationReport {
        let host = hostName ?? localAddress
        let guest = try await Self.runningGuest(vm, in: guests, host: host)
        let memory = UInt64(guest.machine.memoryMiB) << 20
        let chunkSize = min(max(options.chunkSize, 4096), WireProtocol.maximumChunkSize)
        let offer = MigrationOffer(id: .random(), vm: vm, size: memory, sha256: WireProtocol.noDigest,
                                   performance: options.performance, channels: 1, chunkSize: UInt32(chunkSize),
                                   vmKind: .qemuLive, sourceGeneration: osGeneration?.rawValue)
        let sent = SentBytes(total: memory, progress: options.progress)
        await sent.report(.connecting)
        let targetName = try target.targetName()
        let runDirectory = guests.settings.runDirectory
        let settings = options.protocolSettings
        var queuedAt: Int? = nil
        var commitSent = false
        let refused = Flag()
        let journal = LiveMoveJournal(vmDirectory: vmDirectory)
        var journalPath: String? = nil
        let principal: String
        do {
            principal = try await Self.connect(from: localAddress, to: target) { conn throws(MigrationServiceError) in
                conn.settings = settings
                conn.binding = ConnectionBinding(migrationID: offer.id, channel: 0)
                let principal = try await authentication.authenticate(conn, purpose: .migration, target: targetName,
                                                                      destinationName: target.fqdn)
                do throws(MigrationServiceError) {
                    guard conn.version >= 2 else {
                        throw MigrationServiceError.failure(.protocolViolation, .revisionMismatch, stage: .source,
                                                            reason: "The migration protocol versions are incompatible",
                                                            detail: "\(target.fqdn) speaks protocol \(conn.version), a running QEMU guest needs 2")
                    }
                    queuedAt = try await Self.offer(offer, on: conn, sent: sent)
                    await sent.report(.transferring)
                    let (chunks, bytes) = try await LiveStream.send(from: guest, vm: vm, id: offer.id, runDirectory: runDirectory,
                                                                    conn: conn, chunkSize: chunkSize, sent: sent)
                    // QEMU completed: the guest is paused here (postmigrate). The destination echoes once its
                    // QEMU has loaded the whole state (paused, not running).
                    try await conn.send(.channelDone(chunks: chunks, bytes: bytes))
                    guard case .channelDone(let c, let b) = try await conn.receive(), c == chunks, b == bytes else {
                        throw MigrationServiceError.protocolViolation("the destination did not confirm the stream", stage: .source)
                    }
                    await sent.report(.committing)
                    // Where `commit` goes, on disk before its first byte leaves: a restart of this daemon (kill -9 in the
                    // commit window) asks that destination instead of guessing (CommitOutcome.swift). Without this
                    // record a paused guest never had its `commit` sent, and is resumed at the next start.
                    journalPath = try journal.write(vm: vm, id: offer.id, to: target)
                    // Point of no return: from the first byte of `commit` on, the destination may resume the guest.
                    commitSent = true
                    try await conn.send(.commit)
                    guard case .committed = try await conn.receive() else {
                        throw MigrationServiceError.protocolViolation("expected committed", stage: .source)
                    }
                } catch {
                    if conn.receivedError { refused.set(true) }
                    if !commitSent { await conn.sendError(error) }
                    throw error.asSeenBySource(destination: target.fqdn)
                }
                return principal
            }
        } catch {
            let uncertain = commitSent && !refused.isSet
            let thrown = await Self.recover(vm, guest, in: guests, after: error, uncertain: uncertain, host: host, destination: target.fqdn)
            if !uncertain, let journalPath { journal.remove(journalPath) }
            throw thrown
        }
        // The destination runs the guest now: only then does it leave this host.
        if let journalPath { journal.remove(journalPath) }
        guests.departed(vm)
        await sent.report(.committed)
        await guest.stop()
        return MigrationReport(vm: vm, bytes: sent.sentBytes, sha256: "", destinationPrincipal: principal,
                               performance: options.performance, channels: 1, queuedAt: queuedAt)
    }
}

extension MigrationDestination {
    /// Destination of a live migration: a QEMU started with `-S -incoming defer`, fed the unsealed stream;
    /// it resumes (`cont`) only on `commit`. Any failure before that stops that QEMU (its own pid) and
    /// leaves nothing behind.
    func receiveLive(_ offer: MigrationOffer, user: String, conn: FrameConnection,
                     configuration: DestinationConfiguration) async throws(MigrationServiceError) {
        let guests = try admitLive(offer, configuration: configuration)
        await log.append(.offered(vm: offer.vm, user: user))
        try reserveLive(offer, conn: conn, guests: guests, configuration: configuration)
        let settings = guests.settings
        let socketName = "in-\(offer.id.description.prefix(12))"
        let streamPath = "\(settings.runDirectory)/\(socketName).sock"
        var process: QEMUProcess? = nil
        var holdsSlot = false
        var resumed = false
        let records = LiveCommitRecords(vmDirectory: configuration.vmDirectory)
        var recorded = false
        let watch = ProgressWatch()
        let timeout = configuration.limits.progressTimeout
        do throws(MigrationServiceError) {
            try await waitForSlot(offer, conn: conn)
            holdsSlot = true
            let machine = QEMUMachine(memoryMiB: Int(offer.size >> 20), machine: settings.machine, accel: settings.accel)
            let incoming = try await guests.launch(offer.vm, machine: machine, incoming: true, socketName: socketName)
            process = incoming
            do {
                try await incoming.qmp.execute("migrate-incoming", ["uri": .string("unix:\(streamPath)")])
            } catch {
                throw LiveStream.failure(error, vm: offer.vm, stage: .destination, what: "Receiving")
            }
            let feed = try await Self.connectFeed(streamPath, vm: offer.vm)
            await log.append(.started(vm: offer.vm, user: user))
            try await conn.send(.ready)
            // Progress timeout (limits.progressTimeout), as for a state file: a stalled source cannot hold
            // the N2 slot (or this QEMU) forever; closing the connection fails the move here.
            watch.add(conn)
            let watchdog = Task { await watch.run(timeout: timeout) }
            defer { watchdog.cancel() }
            let (chunks, bytes) = try await Self.load(offer, from: conn, through: feed, into: incoming,
                                                      hostName: configuration.hostName)
            try await conn.send(.channelDone(chunks: chunks, bytes: bytes))
            guard case .commit = try await conn.receive() else {
                throw MigrationServiceError.protocolViolation("expected commit", stage: .destination)
            }
            watchdog.cancel()
            try admitCommit(offer)
            // Durable before the guest runs here: an outcome query (also after a restart of this daemon) answers
            // "committed" exactly when the guest was resumed here.
            try records.record(offer.id, vm: offer.vm, stage: .destination)
            recorded = true
            // The source has let go (its guest is paused and will be stopped): the guest runs here now.
            try await Self.resume(incoming, vm: offer.vm)
            resumed = true
            guests.adopt(offer.vm, incoming)
            logger.notice("live move of '\(offer.vm)' (migration \(offer.id)) committed: the guest runs here (QEMU pid \(incoming.pid))")
            await log.append(.committed(vm: offer.vm, bytes: bytes))
            try? await conn.send(.committed)
        } catch {
            // Not resumed: not committed (before the gate goes, so a waiting outcome query reads the final record).
            if recorded && !resumed { records.remove(offer.id) }
            if watch.timedOut {
                logger.info("live migration of '\(offer.vm)' made no progress for \(timeout) s: closed")
            }
            if !resumed, let process {
                await process.stop(grace: .seconds(2))
                let tail = process.logTail()
                if !tail.isEmpty { logger.info("incoming QEMU of \(offer.vm): \(tail)") }
                unlink(process.logPath)
            }
            unlink(streamPath)
            await log.append(.failed(vm: offer.vm, status: error.status, detail: error.detail))
            await cleanUp(offer, holdsSlot: holdsSlot)
            throw error
        }
        unlink(streamPath)
        await cleanUp(offer, holdsSlot: holdsSlot)
    }

    /// The host's guests when this host runs QEMU and the offer is one it can take: a valid name, one channel, a
    /// chunk size the wire allows, whole MiB of memory within `maximumIncomingMemoryMiB`.
    private func admitLive(_ offer: MigrationOffer, configuration: DestinationConfiguration) throws(MigrationServiceError) -> QEMUGuests {
        guard let guests else {
            throw MigrationServiceError.failure(.configuration, .notSupported, stage: .destination,
                                                reason: "Host \(configuration.hostName) does not run QEMU virtual machines",
                                                detail: "no QEMU settings in its configuration")
        }
        try VMStore.checkName(offer.vm, stage: .destination)
        let settings = guests.settings
        let mib = offer.size >> 20
        guard offer.channels == 1, offer.chunkSize >= 1, Int(offer.chunkSize) <= WireProtocol.maximumChunkSize,
              offer.size > 0, offer.size & ((1 << 20) - 1) == 0 else {
            throw MigrationServiceError.protocolViolation("bad live offer (memory \(offer.size), \(offer.channels) channels, chunk \(offer.chunkSize))",
                                                          stage: .destination)
        }
        guard mib <= UInt64(settings.maximumIncomingMemoryMiB) else {
            throw MigrationServiceError.failure(.storage, .notSupported, stage: .destination,
                                                reason: "Host \(configuration.hostName) cannot take a virtual machine with \(mib) MiB of memory",
                                                detail: "at most \(settings.maximumIncomingMemoryMiB) MiB")
        }
        return guests
    }

    /// Reserves the VM's name and the move's commit gate (from here until the move ends, an outcome query for it
    /// ends it before `commit`, or waits after); refuses a name that exists here or is arriving already.
    private func reserveLive(_ offer: MigrationOffer, conn: FrameConnection, guests: QEMUGuests,
                             configuration: DestinationConfiguration) throws(MigrationServiceError) {
        let store = VMStore(directory: configuration.vmDirectory)
        let reserved = state.withLock { s -> Bool in
            guard s.active[offer.id] == nil, s.liveGates[offer.id] == nil, !s.fenced.contains(offer.id),
                  s.inFlight.insert(offer.vm).inserted else { return false }
            s.liveGates[offer.id] = LiveCommitGate(close: conn.close)
            return true
        }
        guard reserved, !store.contains(offer.vm), !guests.knows(offer.vm) else {
            if reserved {
                state.withLock { s in
                    s.inFlight.remove(offer.vm)
                    s.liveGates[offer.id] = nil
                }
            }
            throw MigrationServiceError.failure(.storage, .alreadyExists, stage: .destination,
                                                reason: "A virtual machine named '\(offer.vm)' already exists on \(configuration.hostName)")
        }
    }

    /// The connection to the incoming QEMU's migration socket.
    private static func connectFeed(_ streamPath: String, vm: String) async throws(MigrationServiceError) -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        do {
            return try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(unixDomainSocketPath: streamPath) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        // Unsealing runs ahead of QEMU's loading by a few chunks instead of waiting for each.
                        try FrameConnection.setBulkOptions(channel)
                        return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw MigrationServiceError.failure(.storage, .unspecifiedFailure, stage: .destination,
                                                reason: "Could not reach the incoming QEMU of '\(vm)'", detail: "\(error)")
        }
    }

    /// Feeds the stream from `conn` into the incoming QEMU until `channelDone`, then waits until QEMU has loaded
    /// the whole state (it stays paused: `-S`); the stream's chunk and byte counts.
    private static func load(_ offer: MigrationOffer, from conn: FrameConnection, through feed: NIOAsyncChannel<ByteBuffer, ByteBuffer>,
                             into incoming: QEMUProcess, hostName: String) async throws(MigrationServiceError) -> (UInt32, UInt64) {
        let fed: Result<(UInt32, UInt64, String), MigrationServiceError>
        do {
            fed = try await feed.executeThenClose { _, outbound in
                // The socket stays open until QEMU has read and loaded everything (closing it earlier
                // would drop writes NIO has not flushed yet).
                let result = await Self.feed(conn: conn, offer: offer, into: outbound)
                guard case .success(let (chunks, bytes)) = result else { return result.map { ($0.0, $0.1, "") } }
                do throws(MigrationServiceError) {
                    let status = try await LiveStream.waitForOutcome(incoming, vm: offer.vm, stage: .destination)
                    return .success((chunks, bytes, status))
                } catch {
                    return .failure(error)
                }
            }
        } catch {
            throw MigrationServiceError.failure(.storage, .unspecifiedFailure, stage: .destination,
                                                reason: "Feeding the incoming QEMU of '\(offer.vm)' failed", detail: "\(error)")
        }
        let (chunks, bytes, status) = try fed.get()
        guard status == "completed" else {
            throw MigrationServiceError.failure(.storage, .unspecifiedFailure, stage: .destination,
                                                reason: "The virtual machine '\(offer.vm)' could not be loaded on \(hostName)",
                                                detail: "incoming migration \(status)")
        }
        return (chunks, bytes)
    }

    /// Lets the commit decide, unless an outcome query came first and ended this move (its source was told
    /// "not committed"): then the commit is refused.
    private func admitCommit(_ offer: MigrationOffer) throws(MigrationServiceError) {
        let admitted = state.withLock { s -> Bool in
            guard !s.fenced.contains(offer.id) else { return false }
            s.liveGates[offer.id]?.deciding = true
            return true
        }
        guard admitted else {
            throw MigrationServiceError.failure(.configuration, .cancelled, stage: .destination,
                                                reason: "The move of '\(offer.vm)' was ended by its source's outcome query",
                                                detail: "a commit after the source was told \"not committed\" is refused")
        }
    }

    /// Resumes the loaded guest (`cont`) and checks it runs.
    private static func resume(_ incoming: QEMUProcess, vm: String) async throws(MigrationServiceError) {
        do throws(QEMUError) {
            try await incoming.qmp.execute("cont")
            guard try await incoming.status() == "running" else {
                throw QEMUError(.migration, "the guest did not resume")
            }
        } catch {
            throw LiveStream.failure(error, vm: vm, stage: .destination, what: "Resuming")
        }
    }

    /// Receives the stream's chunks on `conn` and writes each one's plaintext into QEMU's socket, until
    /// `channelDone`. Chunks must come in sequence and at the stream's running offset.
    private static func feed(conn: FrameConnection, offer: MigrationOffer,
                             into outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) async -> Result<(UInt32, UInt64), MigrationServiceError> {
        var expected: UInt32 = 0
        var total: UInt64 = 0
        do throws(MigrationServiceError) {
            while true {
                switch try await conn.receive() {
                case .chunk(let header, let data):
                    guard header.sequence == expected else {
                        throw MigrationServiceError.failure(.integrity, .outOfSequence, stage: .destination,
                                                            reason: "A migration chunk arrived out of sequence",
                                                            detail: "chunk \(header.sequence), expected \(expected)")
                    }
                    guard header.offset == total, header.flags == 0, header.length > 0, header.length <= offer.chunkSize,
                          data.readableBytes == Int(header.length) else {
                        throw MigrationServiceError.protocolViolation("chunk \(header.sequence) does not continue the stream at \(total)",
                                                                      stage: .destination)
                    }
                    do {
                        try await outbound.write(data)
                    } catch {
                        throw MigrationServiceError.failure(.storage, .unspecifiedFailure, stage: .destination,
                                                            reason: "The incoming QEMU of '\(offer.vm)' stopped taking its state",
                                                            detail: "\(error)")
                    }
                    expected &+= 1
                    total += UInt64(header.length)
                case .channelDone(let chunks, let bytes):
                    guard chunks == expected, bytes == total else {
                        throw MigrationServiceError.protocolViolation("the stream ended after \(chunks) chunks/\(bytes) bytes, received \(expected)/\(total)",
                                                                      stage: .destination)
                    }
                    return .success((chunks, bytes))
                default:
                    throw MigrationServiceError.protocolViolation("expected a chunk", stage: .destination)
                }
            }
        } catch {
            return .failure(error)
        }
    }
}
