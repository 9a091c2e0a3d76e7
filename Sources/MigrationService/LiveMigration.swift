import Foundation
import GSS
import NIOCore
import NIOPosix
import QEMU
import Synchronization
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

    /// One connection QEMU opened into the source daemon's migration socket, and what QEMU writes on it.
    typealias QEMUStream = NIOAsyncChannel<ByteBuffer, Never>
    typealias QEMUBytes = NIOAsyncChannelInboundStream<ByteBuffer>

    /// Source: asks `guest` to migrate into a socket under `runDirectory` and sends everything QEMU writes as
    /// sealed chunks. QEMU's main stream (the first connection it opens) goes on `conn`, channel 0. With
    /// `multifd` > 0 QEMU migrates with that many multifd channels (the SMB option) and opens one more
    /// connection per channel; `openChannel(k, stream)` carries the k-th of them (k = 1 … multifd) on a
    /// connection of its own, joined to the move as channel k. Returns channel 0's (chunks, bytes) once QEMU has
    /// closed every stream and reports the migration `completed` (the guest is then paused in `postmigrate`).
    /// The first failure of any channel ends them all and is the one thrown.
    static func send(from guest: QEMUProcess, vm: String, id: MigrationID, runDirectory: String, conn: FrameConnection,
                     chunkSize: Int, sent: SentBytes, multifd: Int = 0,
                     openChannel: @escaping @Sendable (Int, QEMUBytes) async -> Result<Void, MigrationServiceError> = { _, _ in .success(()) })
        async throws(MigrationServiceError) -> (UInt32, UInt64) {
        let socketPath = "\(runDirectory)/out-\(id.description.prefix(12)).sock"
        defer { unlink(socketPath) }
        let server = try await bindStreamSocket(socketPath, vm: vm)
        do throws(QEMUError) {
            try await configureChannels(guest, multifd: multifd)
            try await guest.qmp.execute("migrate-set-parameters", ["max-bandwidth": .number(Double(maximumBandwidth))])
            try await guest.qmp.execute("migrate", ["uri": .string("unix:\(socketPath)")])
        } catch {
            try? await server.channel.close()
            throw failure(error, vm: vm, stage: .source, what: "Starting the migration")
        }
        let streams = StreamSet(server: server.channel)
        // Until QEMU has connected every channel and written its first bytes on each, watch for a migration that
        // failed first (the accept, or the wait for those bytes, would last forever).
        let watchdog = watchUntilConnected(guest) {
            streams.fail(.failure(.storage, .unspecifiedFailure, stage: .source, reason: "QEMU could not migrate '\(vm)'",
                                  detail: "its migration failed before it opened every stream"))
        }
        defer { watchdog.cancel() }
        var main: (UInt32, UInt64)? = nil
        do {
            main = try await server.executeThenClose { inbound in
                await withTaskGroup(of: Void.self) { group in
                    var accepted: [AcceptedStream] = []
                    var connections = inbound.makeAsyncIterator()
                    for k in 0...multifd {
                        let next: AcceptedStream?
                        do {
                            next = try await connections.next()
                        } catch {
                            streams.fail(.failure(.storage, .unspecifiedFailure, stage: .source,
                                                  reason: "Reading the migration stream of '\(vm)' failed", detail: "\(error)"))
                            break
                        }
                        guard let stream = next else {
                            streams.fail(.failure(.storage, .unspecifiedFailure, stage: .source,
                                                  reason: "QEMU did not start the migration of '\(vm)'",
                                                  detail: "its migration socket closed after \(k) of \(multifd + 1) connections"))
                            break
                        }
                        streams.add(stream.channel.channel)
                        accepted.append(stream)
                    }
                    // Which stream is which, by its first bytes: QEMU connects the main stream first, but it does
                    // not wait for that connection before it opens the multifd channels. Each multifd channel is
                    // carried as soon as it is known; the main stream here, once all are.
                    var mainStream: QEMUStream? = nil
                    var nextChannel = 1
                    await withTaskGroup(of: (Int, UInt32?).self) { kinds in
                        for (i, stream) in accepted.enumerated() {
                            kinds.addTask { (i, try? await stream.magic.get()) }
                        }
                        for await (i, magic) in kinds {
                            let stream = accepted[i].channel
                            if magic == QEMUStreamMagic.main, mainStream == nil {
                                mainStream = stream
                            } else if magic == QEMUStreamMagic.multifd, nextChannel <= multifd {
                                let k = nextChannel
                                nextChannel += 1
                                group.addTask {
                                    let result = await carry(stream, vm: vm) { bytes in await openChannel(k, bytes) }
                                    if case .failure(let error) = result { streams.fail(error) }
                                }
                            } else {
                                if magic != nil {
                                    streams.fail(.failure(.storage, .unspecifiedFailure, stage: .source,
                                                          reason: "QEMU's migration stream of '\(vm)' is not one this host can carry",
                                                          detail: "a stream starting with 0x\(String(magic ?? 0, radix: 16))"))
                                }
                                group.addTask { _ = await carry(stream, vm: vm) { _ in .success(()) } }
                            }
                        }
                    }
                    watchdog.cancel()
                    guard let mainStream else {
                        streams.fail(.failure(.storage, .unspecifiedFailure, stage: .source, reason: "QEMU did not start the migration of '\(vm)'",
                                              detail: "no main stream among its \(accepted.count) connections"))
                        return nil
                    }
                    let chunker = Chunker(conn: conn, chunkSize: chunkSize, sent: sent)
                    let result = await carry(mainStream, vm: vm) { bytes in await relay(bytes, vm: vm, to: chunker) }
                    await group.waitForAll()
                    switch result {
                    case .success(let counts): return counts
                    case .failure(let error):
                        streams.fail(error)
                        return nil
                    }
                }
            }
        } catch {
            streams.fail(.failure(.storage, .unspecifiedFailure, stage: .source, reason: "Reading the migration stream of '\(vm)' failed",
                                  detail: "\(error)"))
        }
        if let error = streams.failure { throw error }
        guard let counts = main else {
            throw .failure(.storage, .unspecifiedFailure, stage: .source, reason: "QEMU did not start the migration of '\(vm)'")
        }
        // The streams ended: QEMU says whether that was the end of a migration or a failure.
        let status = try await waitForOutcome(guest, vm: vm, stage: .source)
        guard status == "completed" else {
            throw .failure(.storage, .unspecifiedFailure, stage: .source, reason: "QEMU could not migrate '\(vm)'",
                           detail: "query-migrate: \(status)")
        }
        return counts
    }

    /// Runs `body` on what QEMU writes on `stream`, then closes it.
    private static func carry<T>(_ stream: QEMUStream, vm: String,
                                 _ body: (QEMUBytes) async -> Result<T, MigrationServiceError>) async -> Result<T, MigrationServiceError> {
        do {
            return try await stream.executeThenClose { bytes, _ in await body(bytes) }
        } catch {
            return .failure(.failure(.storage, .unspecifiedFailure, stage: .source, reason: "Reading the migration stream of '\(vm)' failed",
                                     detail: "\(error)"))
        }
    }

    /// Turns QEMU's multifd capability on with `multifd` channels, or off (0). Both ends of a move set it alike
    /// before the stream starts (QEMU keeps it from one migration to the next).
    static func configureChannels(_ process: QEMUProcess, multifd: Int) async throws(QEMUError) {
        let capability: JSONValue = .object(["capability": .string("multifd"), "state": .bool(multifd > 0)])
        try await process.qmp.execute("migrate-set-capabilities", ["capabilities": .array([capability])])
        if multifd > 0 {
            try await process.qmp.execute("migrate-set-parameters", ["multifd-channels": .number(Double(multifd))])
        }
    }

    /// The unix socket QEMU writes its migration stream into (QEMU's connections: its main stream, then one per
    /// multifd channel).
    private static func bindStreamSocket(_ socketPath: String, vm: String) async throws(MigrationServiceError)
        -> NIOAsyncChannel<AcceptedStream, Never> {
        do {
            return try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .childChannelOption(ChannelOptions.recvAllocator,
                                    value: AdaptiveRecvByteBufferAllocator(minimum: 64 << 10, initial: 1 << 20, maximum: 4 << 20))
                .bind(unixDomainSocketPath: socketPath, cleanupExistingSocketFile: true) { child in
                    child.eventLoop.makeCompletedFuture {
                        let magic = child.eventLoop.makePromise(of: UInt32.self)
                        try child.pipeline.syncOperations.addHandler(QEMUStreamMagic(magic))
                        return AcceptedStream(channel: try NIOAsyncChannel<ByteBuffer, Never>(wrappingChannelSynchronously: child),
                                              magic: magic.futureResult)
                    }
                }
        } catch {
            throw .failure(.storage, .unspecifiedFailure, stage: .source, reason: "Could not open the migration socket of '\(vm)'",
                           detail: "\(socketPath): \(error)")
        }
    }

    /// Calls `failed` when the guest's migration fails or its QEMU ends; cancel it once QEMU has opened its streams.
    private static func watchUntilConnected(_ guest: QEMUProcess, failed: @escaping @Sendable () -> Void) -> Task<Void, Never> {
        Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(200))
                let status = (try? await guest.qmp.execute("query-migrate"))?["status"]?.string
                if status == "failed" || status == "cancelled" || !guest.isAlive {
                    failed()
                    return
                }
            }
        }
    }

    /// Sends everything QEMU writes as sealed chunks; the chunk and byte counts once QEMU closed the stream.
    static func relay(_ bytes: QEMUBytes, vm: String,
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
                // What one read returned goes out at once: holding bytes back for a fuller chunk can stall both
                // QEMUs (with multifd, the destination waits for a channel's first bytes before it reads the
                // main stream, while the source waits for the main stream to drain before it fills that channel).
                try await chunker.append(piece)
                try await chunker.flush()
            }
            try await chunker.flush()
            return .success((chunker.sequence, chunker.total))
        } catch {
            return .failure(error)
        }
    }

    /// Polls `query-migrate` until the migration is no longer under way; returns its status
    /// (`completed`, `failed`, `cancelled`, …). An error `abort` returns ends the wait with it.
    static func waitForOutcome(_ process: QEMUProcess, vm: String, stage: MigrationStage,
                               abort: @Sendable () -> MigrationServiceError? = { nil }) async throws(MigrationServiceError) -> String {
        let clock = ContinuousClock()
        let deadline = clock.now + completionTimeout
        while clock.now < deadline {
            if let error = abort() { throw error }
            guard process.isAlive else {
                throw .failure(.storage, .unspecifiedFailure, stage: stage, reason: "The QEMU of '\(vm)' exited during the migration")
            }
            let reply: JSONValue
            do throws(QEMUError) {
                // Short: a QEMU whose main loop waits for a multifd channel that has failed does not answer, and the
                // failure (`abort`) must still end the wait.
                reply = try await process.qmp.execute("query-migrate", timeout: .seconds(1))
            } catch where error.kind == .timeout {
                continue
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

/// A connection QEMU opened into the source daemon's migration socket, and its first four bytes once they came.
struct AcceptedStream: Sendable {
    let channel: LiveStream.QEMUStream
    let magic: EventLoopFuture<UInt32>
}

/// Reads the first four bytes of a QEMU migration connection (passing everything on unchanged): `QEVM` starts the
/// main stream, 0x11223344 a multifd channel. The promise fails when the connection closes first.
final class QEMUStreamMagic: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    /// QEMU_VM_FILE_MAGIC and MULTIFD_MAGIC.
    static let main: UInt32 = 0x5145_564D
    static let multifd: UInt32 = 0x1122_3344

    private let promise: EventLoopPromise<UInt32>
    private var held: ByteBuffer? = nil
    private var known = false

    init(_ promise: EventLoopPromise<UInt32>) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !known else { return context.fireChannelRead(data) }
        var buffer = unwrapInboundIn(data)
        if var first = held {
            first.writeBuffer(&buffer)
            buffer = first
            held = nil
        }
        guard let magic = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else {
            held = buffer
            return
        }
        known = true
        promise.succeed(magic)
        context.fireChannelRead(wrapInboundOut(buffer))
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !known {
            known = true
            if let held { context.fireChannelRead(wrapInboundOut(held)) }
            held = nil
            promise.fail(ChannelError.eof)
        }
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if !known { promise.fail(ChannelError.ioOnClosedChannel) }
    }
}

/// The source's QEMU connections of one move and the first failure among its channels: that failure closes
/// them all (and the socket QEMU connects to), so QEMU's migration fails at once and every channel ends.
final class StreamSet: Sendable {
    private let state: Mutex<(channels: [any Channel], failure: MigrationServiceError?)>

    init(server: any Channel) { state = Mutex(([server], nil)) }

    /// The failure that ended the move, if one did.
    var failure: MigrationServiceError? { state.withLock { $0.failure } }

    /// Closes `channel` too when a channel fails (at once if one has).
    func add(_ channel: any Channel) {
        let failed = state.withLock { s -> Bool in
            s.channels.append(channel)
            return s.failure != nil
        }
        if failed { channel.close(promise: nil) }
    }

    /// Records `error` unless a failure came first, and closes every connection.
    func fail(_ error: MigrationServiceError) {
        let channels = state.withLock { s -> [any Channel] in
            if s.failure == nil { s.failure = error }
            return s.channels
        }
        for channel in channels { channel.close(promise: nil) }
    }
}

/// Cuts QEMU's stream into chunks of at most `chunkSize` plaintext bytes (what one read returned, split at
/// `chunkSize`): each is built straight after its message header (`chunk` kind + `ChunkHeader`, offset = position in
/// the stream) and sealed in place.
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
        // SMB: QEMU multifd, one connection per multifd channel besides the main stream's.
        let channels = options.performance == .smb ? min(max(options.channels, 1), WireProtocol.maximumChannels) : 1
        let offer = MigrationOffer(id: .random(), vm: vm, size: memory, sha256: WireProtocol.noDigest,
                                   performance: options.performance, channels: UInt8(channels), chunkSize: UInt32(chunkSize),
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
                    let localAddress = self.localAddress
                    let (chunks, bytes) = try await LiveStream.send(
                        from: guest, vm: vm, id: offer.id, runDirectory: runDirectory, conn: conn, chunkSize: chunkSize, sent: sent,
                        multifd: channels - 1) { k, bytes in
                        await Self.carryChannel(k, bytes, offer: offer, from: localAddress, to: target, authentication: authentication,
                                                targetName: targetName, settings: settings, sent: sent)
                    }
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
                               performance: options.performance, channels: channels, queuedAt: queuedAt)
    }

    /// Carries QEMU's multifd connection `stream` as channel `k` of the live move `offer`: a connection of its own,
    /// authenticated as `authentication`, joined to the move; the destination echoes its `channelDone` once it has
    /// written everything into its QEMU.
    private static func carryChannel(_ k: Int, _ bytes: LiveStream.QEMUBytes, offer: MigrationOffer, from localAddress: String,
                                     to target: MigrationTarget, authentication: MigrationAuthentication, targetName: GSSName,
                                     settings: ProtocolSettings, sent: SentBytes) async -> Result<Void, MigrationServiceError> {
        do throws(MigrationServiceError) {
            try await connect(from: localAddress, to: target) { extra throws(MigrationServiceError) in
                extra.settings = settings
                extra.binding = ConnectionBinding(migrationID: offer.id, channel: UInt8(k))
                _ = try await authentication.authenticate(extra, purpose: .migration, target: targetName, destinationName: target.fqdn)
                do throws(MigrationServiceError) {
                    try await extra.send(.join(id: offer.id, channel: UInt8(k)))
                    guard case .ready = try await extra.receive() else {
                        throw MigrationServiceError.protocolViolation("expected ready", stage: .source)
                    }
                    let chunker = Chunker(conn: extra, chunkSize: Int(offer.chunkSize), sent: sent)
                    let (chunks, total) = try await LiveStream.relay(bytes, vm: offer.vm, to: chunker).get()
                    try await extra.send(.channelDone(chunks: chunks, bytes: total))
                    guard case .channelDone(let c, let b) = try await extra.receive(), c == chunks, b == total else {
                        throw MigrationServiceError.protocolViolation("the destination did not confirm channel \(k)", stage: .source)
                    }
                } catch {
                    if !extra.receivedError { await extra.sendError(error) }
                    throw error
                }
            }
            return .success(())
        } catch {
            return .failure(error.asSeenBySource(destination: target.fqdn))
        }
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
        var channels: IncomingLive? = nil
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
                try await LiveStream.configureChannels(incoming, multifd: Int(offer.channels) - 1)
                try await incoming.qmp.execute("migrate-incoming", ["uri": .string("unix:\(streamPath)")])
            } catch {
                throw LiveStream.failure(error, vm: offer.vm, stage: .destination, what: "Receiving")
            }
            // QEMU takes the first connection to its socket as the main stream: this one, before any channel joins.
            let feed = try await Self.connectFeed(streamPath, vm: offer.vm)
            let joining = IncomingLive(offer: offer, user: user, streamPath: streamPath, watch: watch, closeMain: conn.close)
            channels = joining
            // A failed channel must also end a write into QEMU that waits for that channel's pages.
            joining.closeOnFailure { feed.channel.close(promise: nil) }
            state.withLock { $0.live[offer.id] = joining }
            await log.append(.started(vm: offer.vm, user: user))
            try await conn.send(.ready)
            // Progress timeout (limits.progressTimeout), as for a state file: a stalled source cannot hold
            // the N2 slot (or this QEMU) forever; closing the connection fails the move here.
            watch.add(conn)
            let watchdog = Task { await watch.run(timeout: timeout) }
            defer { watchdog.cancel() }
            let (chunks, bytes) = try await Self.load(offer, from: conn, through: feed, into: incoming, channels: joining,
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
            // The multifd channels end with the move (their connections closed, their QEMU sockets too); the first
            // failure of any channel is the move's.
            let cause = channels?.fail(error) ?? error
            // Not resumed: not committed (before the gate goes, so a waiting outcome query reads the final record).
            if recorded && !resumed { records.remove(offer.id) }
            if watch.timedOut {
                logger.info("live migration of '\(offer.vm)' made no progress for \(timeout) s: closed")
            }
            if !resumed, let process {
                // QEMU keeps why its incoming migration failed in `query-migrate`, not in its log.
                if let reply = try? await process.qmp.execute("query-migrate", timeout: .seconds(1)), let why = reply["error-desc"]?.string {
                    logger.info("incoming QEMU of \(offer.vm): \(reply["status"]?.string ?? "?"): \(why)")
                }
                await process.stop(grace: .seconds(2))
                let tail = process.logTail()
                if !tail.isEmpty { logger.info("incoming QEMU of \(offer.vm): \(tail)") }
                unlink(process.logPath)
            }
            unlink(streamPath)
            await log.append(.failed(vm: offer.vm, status: cause.status, detail: cause.detail))
            await cleanUp(offer, holdsSlot: holdsSlot)
            throw cause
        }
        unlink(streamPath)
        await cleanUp(offer, holdsSlot: holdsSlot)
    }

    /// The host's guests when this host runs QEMU and the offer is one it can take: a valid name, one channel (SMB:
    /// 1 … 16, QEMU's main stream and its multifd channels), a chunk size the wire allows, whole MiB of memory within `maximumIncomingMemoryMiB`.
    private func admitLive(_ offer: MigrationOffer, configuration: DestinationConfiguration) throws(MigrationServiceError) -> QEMUGuests {
        guard let guests else {
            throw MigrationServiceError.failure(.configuration, .notSupported, stage: .destination,
                                                reason: "Host \(configuration.hostName) does not run QEMU virtual machines",
                                                detail: "no QEMU settings in its configuration")
        }
        try VMStore.checkName(offer.vm, stage: .destination)
        let settings = guests.settings
        let mib = offer.size >> 20
        guard (1...WireProtocol.maximumChannels).contains(Int(offer.channels)), offer.performance == .smb || offer.channels == 1,
              offer.chunkSize >= 1, Int(offer.chunkSize) <= WireProtocol.maximumChunkSize,
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
    /// the whole state (it stays paused: `-S`) and every multifd channel has delivered its stream; the main
    /// stream's chunk and byte counts.
    private static func load(_ offer: MigrationOffer, from conn: FrameConnection, through feed: NIOAsyncChannel<ByteBuffer, ByteBuffer>,
                             into incoming: QEMUProcess, channels: IncomingLive,
                             hostName: String) async throws(MigrationServiceError) -> (UInt32, UInt64) {
        let fed: Result<(UInt32, UInt64, String), MigrationServiceError>
        do {
            fed = try await feed.executeThenClose { _, outbound in
                // The socket stays open until QEMU has read and loaded everything (closing it earlier
                // would drop writes NIO has not flushed yet).
                let result = await Self.feed(conn: conn, offer: offer, into: outbound)
                guard case .success(let (chunks, bytes)) = result else { return result.map { ($0.0, $0.1, "") } }
                do throws(MigrationServiceError) {
                    // A multifd channel that fails ends the wait (QEMU would wait for its pages until the timeout).
                    let status = try await LiveStream.waitForOutcome(incoming, vm: offer.vm, stage: .destination) { channels.failure }
                    if status == "completed" {
                        try channels.verifyComplete()
                        channels.end()
                    }
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
    private static func feed(conn: FrameConnection, offer: MigrationOffer, into outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
                             startingWith first: WireMessage? = nil) async -> Result<(UInt32, UInt64), MigrationServiceError> {
        var expected: UInt32 = 0
        var total: UInt64 = 0
        var pending = first
        do throws(MigrationServiceError) {
            while true {
                let message: WireMessage
                if let first = pending {
                    message = first
                    pending = nil
                } else {
                    message = try await conn.receive()
                }
                switch message {
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

extension MigrationDestination {
    /// Channel `channel` of a live move joins: one of QEMU's multifd channels (the SMB option). Its stream goes into
    /// the incoming QEMU's socket, connected at its first chunk (QEMU reads a multifd channel's header as soon as it
    /// accepts the connection); its `channelDone` is echoed once everything is written, and the socket stays open
    /// until the move has loaded or failed. A failure here fails the move (its main connection is closed).
    func joinLive(_ live: IncomingLive, channel: UInt8, user: String, conn: FrameConnection) async throws(MigrationServiceError) {
        guard live.user == user else {
            throw MigrationServiceError.failure(.authorization, .accessDenied, stage: .destination,
                                                reason: "Channel \(channel) of '\(live.offer.vm)' was opened by another user")
        }
        try live.join(channel, close: conn.close)
        await log.append(.channelJoined(vm: live.offer.vm, channel: Int(channel)))
        do throws(MigrationServiceError) {
            try await conn.send(.ready)
            live.watch.add(conn)
            let first = try await conn.receive()
            guard case .chunk = first else {
                throw MigrationServiceError.protocolViolation("channel \(channel) of a live move carried no chunk", stage: .destination)
            }
            let feed = try await Self.connectFeed(live.streamPath, vm: live.offer.vm)
            live.closeOnFailure { feed.channel.close(promise: nil) }
            let result: Result<(UInt32, UInt64), MigrationServiceError>
            do {
                result = try await feed.executeThenClose { _, outbound in
                    let fed = await Self.feed(conn: conn, offer: live.offer, into: outbound, startingWith: first)
                    guard case .success(let (chunks, bytes)) = fed else { return fed }
                    live.channelDone(channel)
                    do throws(MigrationServiceError) {
                        try await conn.send(.channelDone(chunks: chunks, bytes: bytes))
                    } catch {
                        return .failure(error)
                    }
                    // QEMU reads this channel until the main stream says it has loaded everything.
                    await live.waitForEnd()
                    return fed
                }
            } catch {
                throw MigrationServiceError.failure(.storage, .unspecifiedFailure, stage: .destination,
                                                    reason: "Feeding the incoming QEMU of '\(live.offer.vm)' failed", detail: "\(error)")
            }
            _ = try result.get()
        } catch {
            // The source hears this channel's error before its main connection closes.
            await conn.sendError(error)
            live.fail(error)
            throw error
        }
    }
}

/// A live move being received with more than one channel (QEMU multifd): who may join it, what its channels
/// delivered, and its first failure, which ends them all.
final class IncomingLive: Sendable {
    let offer: MigrationOffer
    let user: String
    /// The incoming QEMU's migration socket.
    let streamPath: String
    /// The progress timeout's view of the move's connections.
    let watch: ProgressWatch
    private let state: Mutex<State>

    private struct State {
        var joined: Set<UInt8> = [0]
        var done: Set<UInt8> = []
        var failure: MigrationServiceError?
        var ended = false
        var closers: [@Sendable () -> Void]
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    init(offer: MigrationOffer, user: String, streamPath: String, watch: ProgressWatch, closeMain: (@Sendable () -> Void)?) {
        self.offer = offer
        self.user = user
        self.streamPath = streamPath
        self.watch = watch
        state = Mutex(State(closers: closeMain.map { [$0] } ?? []))
    }

    /// The first failure of any channel.
    var failure: MigrationServiceError? { state.withLock { $0.failure } }

    /// Admits channel `channel` (1 … channels − 1, once, while the move runs); `close` ends it when the move fails.
    func join(_ channel: UInt8, close: (@Sendable () -> Void)?) throws(MigrationServiceError) {
        let ok = state.withLock { s -> Bool in
            guard s.failure == nil, !s.ended, channel >= 1, channel < offer.channels, s.joined.insert(channel).inserted else { return false }
            if let close { s.closers.append(close) }
            return true
        }
        guard ok else {
            throw MigrationServiceError.protocolViolation("channel \(channel) cannot join '\(offer.vm)'", stage: .destination)
        }
    }

    /// Runs `close` when the move fails (at once if it has): for the connections into QEMU.
    func closeOnFailure(_ close: @escaping @Sendable () -> Void) {
        let failed = state.withLock { s -> Bool in
            if s.failure == nil { s.closers.append(close) }
            return s.failure != nil
        }
        if failed { close() }
    }

    /// Channel `channel` has written its whole stream into QEMU's socket.
    func channelDone(_ channel: UInt8) { _ = state.withLock { $0.done.insert(channel) } }

    /// After QEMU loaded everything: every channel joined and delivered its stream.
    func verifyComplete() throws(MigrationServiceError) {
        let (joined, done, failure) = state.withLock { ($0.joined.count, $0.done.count, $0.failure) }
        if let failure { throw failure }
        guard joined == Int(offer.channels), done == Int(offer.channels) - 1 else {
            throw MigrationServiceError.failure(.integrity, .crcError, stage: .destination,
                                                reason: "The virtual machine '\(offer.vm)' did not arrive completely",
                                                detail: "\(joined) of \(offer.channels) channels joined, \(done + 1) done")
        }
    }

    /// The move has loaded: the channels may close their sockets.
    func end() { finish { $0.ended = true } }

    /// Records `error` unless a failure came first, closes every channel's connection, and returns the first failure.
    @discardableResult
    func fail(_ error: MigrationServiceError) -> MigrationServiceError {
        var first = error
        var closers: [@Sendable () -> Void] = []
        finish { s in
            if s.failure == nil { s.failure = error }
            first = s.failure ?? error
            closers = s.closers
        }
        for close in closers { close() }
        return first
    }

    /// Returns once the move has loaded or failed.
    func waitForEnd() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                guard !s.ended, s.failure == nil else { return true }
                s.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    private func finish(_ change: (inout State) -> Void) {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            change(&s)
            defer { s.waiters = [] }
            return s.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}
