import Foundation
import GSS
import MigrationVocabulary
import NIOCore
import NIOPosix
import Synchronization
import WindowsStatus

/// A host to connect to: its FQDN (as the user typed it: messages name it, and it names the SPN —
/// `Microsoft Virtual System Migration Service/<fqdn>` for a migration, `host/<fqdn>` for the
/// management channel), its endpoint and the SPN's realm.
public struct MigrationTarget: Sendable, Hashable {
    /// The destination's FQDN (`testserver02.contoso.test`); its SPN is
    /// `Microsoft Virtual System Migration Service/<fqdn>[@realm]`.
    public var fqdn: String
    public var endpoint: ServiceEndpoint
    /// The realm of the destination's SPN (nil: a host-based name, mapped by `[domain_realm]`).
    public var realm: String?

    public init(fqdn: String, endpoint: ServiceEndpoint, realm: String? = nil) {
        self.fqdn = fqdn
        self.endpoint = endpoint
        self.realm = realm
    }

    /// The GSS name of `service` on this host: the migration service, or `host` for the management channel.
    func targetName(service: String = MigrationServiceNames.migrationService) throws(MigrationServiceError) -> GSSName {
        do {
            if let realm {
                return try GSSName(principal: MigrationServiceNames.qualified("\(service)/\(fqdn)", realm: realm))
            }
            return try GSSName(service: service, host: fqdn)
        } catch {
            throw .connection(.authentication, error.windowsStatus, destination: fqdn, detail: error.description, gss: error)
        }
    }
}

/// How a client authenticates, with the credential it uses: a source to a destination (the source host's
/// authentication type), or a user to a source's management service, as a remote shell would.
///
/// `.kerberos` is Kerberos alone (for a user: a network logon, so no reusable credential reaches the source
/// and moves need constrained delegation, A2); `.credSSP` delivers the user's password (for a management
/// sign-on: to the source, for the session, A1; make it with
/// ``SignOnCredentials/signOn(user:realm:password:destination:)``). ``type`` is the setting it implements.
public enum MigrationAuthentication: Sendable {
    /// Kerberos with this credential: the user's own (a ccache), or a proxy credential for S4U2Proxy (rule A2);
    /// nil: the process's default ccache.
    case kerberos(GSSCredential?)
    /// CredSSP delivering the user's password from a sign-on on the source (rule A1).
    case credSSP(SignOnCredentials)

    /// The authentication type (`Set-VMHost -VirtualMachineMigrationAuthenticationType`) this is.
    public var type: MigrationAuthenticationType {
        switch self {
        case .kerberos: .kerberos
        case .credSSP: .credSSP
        }
    }

    /// Opens `conn` for `purpose` to `target` as this user; returns the principal the server authenticated.
    func authenticate(_ conn: FrameConnection, purpose: ConnectionPurpose, target: GSSName,
                      destinationName: String) async throws(MigrationServiceError) -> String {
        switch self {
        case .kerberos(let credential):
            try await KerberosHandshake.client(conn, purpose: purpose, target: target, credential: credential,
                                               destinationName: destinationName)
        case .credSSP(let signOn):
            try await CredSSPHandshake.client(conn, purpose: purpose, target: target, signOn: signOn,
                                              destinationName: destinationName)
        }
    }
}

/// Progress of one move.
public struct MigrationProgress: Sendable, Hashable {
    public enum Phase: Sendable, Hashable {
        case connecting
        /// N2: waiting at the destination (1 = next).
        case queued(position: Int)
        case transferring
        case committing
        case committed
    }

    public var phase: Phase
    public var bytesSent: UInt64
    public var totalBytes: UInt64

    public init(phase: Phase, bytesSent: UInt64, totalBytes: UInt64) {
        self.phase = phase
        self.bytesSent = bytesSent
        self.totalBytes = totalBytes
    }
}

/// How to move.
public struct MoveOptions: Sendable {
    public var performance: PerformanceOption
    /// Connections for `.smb` (1…16); other options use one.
    public var channels: Int
    /// Plaintext bytes per chunk (≤ 4 MiB).
    public var chunkSize: Int
    /// Called as the move advances (awaited: a slow callback slows the move).
    public var progress: (@Sendable (MigrationProgress) async -> Void)?
    /// The protection suites offered, in order of preference (default: suite 2, then suite 1).
    public var suites: [ProtectionSuite] = ProtectionSuite.preferred
    /// The protocol versions offered (tests: 1…1 acts as a version-1-only source; the bench: zlib Compression).
    public var protocolVersions: ClosedRange<UInt16> = WireProtocol.minimumVersion...WireProtocol.version
    /// Suite 2's frames per key (tests lower it; the destination must use the same).
    var rekeyInterval: UInt64 = AEADStreamProtection.defaultRekeyInterval

    var protocolSettings: ProtocolSettings {
        ProtocolSettings(versions: protocolVersions, suites: suites, rekeyInterval: rekeyInterval)
    }

    public init(performance: PerformanceOption = .compression, channels: Int = 4,
                chunkSize: Int = WireProtocol.defaultChunkSize,
                progress: (@Sendable (MigrationProgress) async -> Void)? = nil) {
        self.performance = performance
        self.channels = channels
        self.chunkSize = chunkSize
        self.progress = progress
    }
}

/// A finished move.
public struct MigrationReport: Sendable, Hashable {
    public var vm: String
    public var bytes: UInt64
    /// SHA-256 of the VM's state file, hex, on protocol 1 (its offer carries the digest); empty on
    /// protocol 2 and for a live guest, where every chunk is authenticated by the connection's
    /// protection and the destination checks that the chunks tile the file exactly once
    /// (docs/wire-protocol.md, "Integrity of a state file").
    public var sha256: String
    /// The principal the destination authenticated (the user, also through S4U2Proxy).
    public var destinationPrincipal: String
    public var performance: PerformanceOption
    public var channels: Int
    /// N2: the queue position the destination reported, if the move had to wait.
    public var queuedAt: Int?

    public init(vm: String, bytes: UInt64, sha256: String, destinationPrincipal: String,
                performance: PerformanceOption, channels: Int, queuedAt: Int?) {
        self.vm = vm
        self.bytes = bytes
        self.sha256 = sha256
        self.destinationPrincipal = destinationPrincipal
        self.performance = performance
        self.channels = channels
        self.queuedAt = queuedAt
    }
}

/// The source side of a migration: streams a VM from `vmDirectory` to a destination and removes
/// it only after the destination committed it.
public struct MigrationSource: Sendable {
    /// The source's own loopback address (connections originate from it).
    public var localAddress: String
    public var vmDirectory: String

    /// The source host's name as configured (`TestServer01`), used in Hyper-V's texts.
    public var hostName: String?
    /// P4: the source host's generation, told to the destination with each offer (nil: not told).
    public var osGeneration: OSGeneration?

    /// The host's QEMU guests: a VM known there moves live (its running QEMU's state), any other as a state file.
    public var guests: QEMUGuests?

    public init(localAddress: String, vmDirectory: String, hostName: String? = nil,
                guests: QEMUGuests? = nil, osGeneration: OSGeneration? = nil) throws(MigrationServiceError) {
        try ServiceEndpoint.checkAddress(localAddress)
        self.localAddress = localAddress
        self.vmDirectory = vmDirectory
        self.hostName = hostName
        self.guests = guests
        self.osGeneration = osGeneration
    }

    /// Moves `vm` to `target` authenticating with `credential` (the user's own, from a ccache, or a
    /// proxy credential for S4U2Proxy; nil: the process default ccache).
    public func move(vm: String, to target: MigrationTarget, credential: GSSCredential?,
                     options: MoveOptions = MoveOptions()) async throws(MigrationServiceError) -> MigrationReport {
        try await move(vm: vm, to: target, authentication: .kerberos(credential), options: options)
    }

    /// Moves `vm` to `target`, authenticating every connection with `authentication`.
    public func move(vm: String, to target: MigrationTarget, authentication: MigrationAuthentication,
                     options: MoveOptions = MoveOptions()) async throws(MigrationServiceError) -> MigrationReport {
        try VMStore.checkName(vm, stage: .source)
        let store = VMStore(directory: vmDirectory)
        // The VM is locked here for the whole move: a second move of it is refused (ERROR_BUSY).
        let lock = try VMMoveLock.acquire(vm, in: store, host: hostName ?? localAddress)
        defer { lock.release() }
        if let guests, guests.knows(vm) {
            return try await moveLive(vm: vm, guests: guests, to: target, authentication: authentication, options: options)
        }
        try checkRegistered(vm, in: store)
        let file = try VMFile.openForReading(store.path(of: vm), stage: .source)
        let size = file.size
        let channels = options.performance == .smb ? min(max(options.channels, 1), WireProtocol.maximumChannels) : 1
        let chunkSize = min(max(options.chunkSize, 4096), WireProtocol.maximumChunkSize)
        let id = MigrationID.random()
        // The offer is laid out once the opening chose the version: protocol 1 carries the file's SHA-256
        // (one pass over the file before the offer), protocol 2 none (docs/wire-protocol.md, "Integrity").
        var hash: [UInt8] = []
        let target_ = target
        let sent = SentBytes(total: size, progress: options.progress)
        await sent.report(.connecting)
        let targetName = try target.targetName()
        var queuedAt: Int? = nil
        var outgoing: String? = nil
        let refused = Flag()
        let settings = options.protocolSettings
        let principal: String
        do {
            principal = try await Self.connect(from: localAddress, to: target) { conn throws(MigrationServiceError) in
                conn.settings = settings
                conn.binding = ConnectionBinding(migrationID: id, channel: 0)
                let principal = try await authentication.authenticate(conn, purpose: .migration, target: targetName,
                                                                      destinationName: target_.fqdn)
                do {
                    if conn.version < 2 {
                        hash = try await FileWork.run(.source) { () throws(MigrationServiceError) in try file.sha256(stage: .source) }
                    }
                    let offer = MigrationOffer(id: id, vm: vm, size: size, sha256: conn.version < 2 ? hash : WireProtocol.noDigest,
                                               performance: options.performance, channels: UInt8(channels),
                                               chunkSize: UInt32(chunkSize), sourceGeneration: osGeneration?.rawValue)
                    queuedAt = try await Self.offer(offer, on: conn, sent: sent)
                    await sent.report(.transferring)
                    try await Self.send(file, offer: offer, on: conn, channels: channels, from: localAddress, to: target_,
                                        authentication: authentication, targetName: targetName, settings: settings, sent: sent)
                    await sent.report(.committing)
                    // Let go first: the VM leaves this host's VMs before the destination may register it, so a
                    // crash of either side can never leave it registered on both (kill -9 in the commit window).
                    outgoing = try store.letGo(vm, id: id)
                    try await conn.send(.commit)
                    guard case .committed = try await conn.receive() else {
                        throw MigrationServiceError.protocolViolation("expected committed", stage: .source)
                    }
                } catch let error as MigrationServiceError {
                    if conn.receivedError { refused.set(true) }
                    if outgoing == nil { await conn.sendError(error) }
                    throw error.asSeenBySource(destination: target_.fqdn)
                } catch {
                    throw MigrationServiceError.connectionLost("\(error)", stage: .source)
                }
                return principal
            }
        } catch {
            throw afterFailedMove(vm, error, outgoing: outgoing, refused: refused.isSet, store: store, destination: target.fqdn)
        }
        // The destination holds the VM now: the let-go copy is deleted.
        if let outgoing { unlink(outgoing) }
        syncDirectory(store.outgoingDirectory)
        await sent.report(.committed)
        return MigrationReport(vm: vm, bytes: size, sha256: hash.map { String($0, radix: 16).leftPadded(2) }.joined(),
                          destinationPrincipal: principal, performance: options.performance, channels: channels,
                          queuedAt: queuedAt)
    }

    /// The error a failed move of a state file ends with. Let go already (`outgoing`): when the destination refused the
    /// commit it registered nothing and the VM comes back here; otherwise the outcome is uncertain and the kept file is
    /// named for the operator.
    private func afterFailedMove(_ vm: String, _ error: MigrationServiceError, outgoing: String?, refused: Bool, store: VMStore,
                                 destination: String) -> MigrationServiceError {
        guard let outgoing else { return error }
        guard !refused else {
            store.takeBack(vm, from: outgoing)
            return error
        }
        return Self.uncertain(vm: vm, destination: destination, cause: error,
                              check: "'\(vm)' is no longer registered on \(hostName ?? localAddress); its state file is kept "
                                  + "in \(store.outgoingDirectory). Check whether '\(vm)' is registered on \(destination): if it is, "
                                  + "delete the kept file; if it is not, move it back to \(store.path(of: vm))")
    }

    /// Rule P3, in Hyper-V's words (no file paths in what the user sees): `vm` must be a VM of this host.
    private func checkRegistered(_ vm: String, in store: VMStore) throws(MigrationServiceError) {
        guard store.contains(vm) else {
            throw .failure(.storage, .notFound, stage: .source,
                           reason: "Hyper-V was unable to find a virtual machine with name '\(vm)' on host \(hostName ?? localAddress)",
                           detail: "no state file \(store.path(of: vm))")
        }
    }

    /// Sends `file` as `offer`'s chunks: on `conn` (channel 0) and, with the SMB option, on `channels - 1` more
    /// connections, each authenticated as `authentication` and joined to the move.
    private static func send(_ file: VMFile, offer: MigrationOffer, on conn: FrameConnection, channels: Int,
                             from localAddress: String, to target: MigrationTarget, authentication: MigrationAuthentication,
                             targetName: GSSName, settings: ProtocolSettings, sent: SentBytes) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 1..<channels {
                group.addTask {
                    try await Self.connect(from: localAddress, to: target) { extra throws(MigrationServiceError) in
                        extra.settings = settings
                        extra.binding = ConnectionBinding(migrationID: offer.id, channel: UInt8(index))
                        _ = try await authentication.authenticate(extra, purpose: .migration, target: targetName,
                                                                  destinationName: target.fqdn)
                        try await extra.send(.join(id: offer.id, channel: UInt8(index)))
                        guard case .ready = try await extra.receive() else {
                            throw MigrationServiceError.protocolViolation("expected ready", stage: .source)
                        }
                        try await ChunkSender(conn: extra, file: file, offer: offer, channel: index, sent: sent).run()
                    }
                }
            }
            try await ChunkSender(conn: conn, file: file, offer: offer, channel: 0, sent: sent).run()
            try await group.waitForAll()
        }
    }

    /// Authenticates to the destination as `credential` and hangs up (Test-VMMigration-like check):
    /// returns the principal the destination authenticated. Fails like `move` would (N1, P1,
    /// Kerberos errors).
    public func checkConnection(to target: MigrationTarget, credential: GSSCredential?) async throws(MigrationServiceError) -> String {
        try await checkConnection(to: target, authentication: .kerberos(credential))
    }

    /// ``checkConnection(to:credential:)`` with either authentication (CredSSP: the destination checks the
    /// delivered password and authorizes the user, P1).
    public func checkConnection(to target: MigrationTarget,
                                authentication: MigrationAuthentication) async throws(MigrationServiceError) -> String {
        let name = try target.targetName()
        return try await Self.connect(from: localAddress, to: target) { conn throws(MigrationServiceError) in
            try await authentication.authenticate(conn, purpose: .migration, target: name, destinationName: target.fqdn)
        }
    }

    /// Connects from `local` to the target's endpoint and runs `body` on the framed connection.
    static func connect<R: Sendable>(from local: String, to target: MigrationTarget,
                                     _ body: (FrameConnection) async throws(MigrationServiceError) -> R) async throws(MigrationServiceError) -> R {
        let remote = try target.endpoint.socketAddress()
        let bindAddress = try ServiceEndpoint(address: local, port: 0).socketAddress()
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .bind(to: bindAddress)
                .connect(to: remote) { FrameConnection.initialize($0) }
        } catch {
            throw .connection(.connection, .connectionRefused, destination: target.fqdn,
                              detail: "connect to \(target.endpoint) from \(local): \(error)")
        }
        let result: Result<R, MigrationServiceError>
        do {
            result = try await channel.executeThenClose { inbound, outbound in
                let conn = FrameConnection(channel: channel, inbound: inbound, outbound: outbound, stage: .source)
                do throws(MigrationServiceError) {
                    return .success(try await body(conn))
                } catch {
                    return .failure(error)
                }
            }
        } catch {
            throw .connectionLost("\(error)", stage: .source)
        }
        return try result.get()
    }
}

/// Bytes sent so far over all channels, and the progress callback.
extension MigrationSource {
    /// Sends `offer` and waits for the destination's `ready`, reporting each `queued` position (N2)
    /// to `sent`. Returns the last queue position the destination gave (nil: the move did not wait).
    static func offer(_ offer: MigrationOffer, on conn: FrameConnection,
                      sent: SentBytes) async throws(MigrationServiceError) -> Int? {
        try await conn.send(.offer(offer))
        var queuedAt: Int? = nil
        while true {
            let reply = try await conn.receive()
            if case .queued(let position) = reply {
                queuedAt = Int(position)
                await sent.report(.queued(position: Int(position)))
                continue
            }
            guard case .ready = reply else {
                throw MigrationServiceError.protocolViolation("expected ready", stage: .source)
            }
            return queuedAt
        }
    }
}

final class SentBytes: Sendable {
    let total: UInt64
    let progress: (@Sendable (MigrationProgress) async -> Void)?
    private let sent = Mutex<UInt64>(0)

    init(total: UInt64, progress: (@Sendable (MigrationProgress) async -> Void)?) {
        self.total = total
        self.progress = progress
    }

    /// Bytes sent so far.
    var sentBytes: UInt64 { sent.withLock { $0 } }

    func add(_ n: UInt64) async {
        let now = sent.withLock { $0 += n; return $0 }
        await progress?(MigrationProgress(phase: .transferring, bytesSent: now, totalBytes: total))
    }

    func report(_ phase: MigrationProgress.Phase) async {
        let now = sent.withLock { $0 }
        await progress?(MigrationProgress(phase: phase, bytesSent: now, totalBytes: total))
    }
}

/// Sends one channel's share of the file: chunks `channel`, `channel + n`, `channel + 2n`, …
/// read straight into the outgoing buffer on the blocking pool (``FileWork``) one chunk ahead of the
/// sealing, compressed if asked (and smaller), sealed in place.
struct ChunkSender {
    let conn: FrameConnection
    let file: VMFile
    let offer: MigrationOffer
    let channel: Int
    let sent: SentBytes

    /// Room after a chunk's data: a zstd frame of incompressible data is a little longer than it.
    private static let slack = 64

    /// Reads the chunk at `offset` on the pool: for a raw chunk the whole plaintext message (kind, header,
    /// data); for Compression only the data (the task compresses it into the message).
    private static func read(_ file: VMFile, sequence: UInt32, offset: UInt64, length: Int,
                             message: Bool) -> FileWork.Pending<ByteBuffer> {
        FileWork.start(.source) { () throws(MigrationServiceError) -> ByteBuffer in
            var buffer = ByteBufferAllocator().buffer(capacity: (message ? 1 + ChunkHeader.encodedSize : 0) + length + slack)
            if message {
                buffer.writeInteger(WireMessage.Kind.chunk.rawValue)
                ChunkHeader(sequence: sequence, offset: offset, length: UInt32(length), flags: 0).encode(into: &buffer)
            }
            try file.read(into: &buffer, offset: offset, count: length, stage: .source)
            return buffer
        }
    }

    func run() async throws(MigrationServiceError) {
        let chunkSize = UInt64(offer.chunkSize)
        let stride = UInt64(offer.channels) * chunkSize
        let compress = offer.performance == .compression
        let compressor = compress ? try ChunkCompressor(zstd: ChunkCodec.usesZstd(conn.negotiation)) : nil
        let size = offer.size, file = self.file
        func start(_ sequence: UInt32, _ offset: UInt64) -> FileWork.Pending<ByteBuffer>? {
            offset < size ? Self.read(file, sequence: sequence, offset: offset, length: Int(min(chunkSize, size - offset)),
                                      message: !compress) : nil
        }
        var sequence: UInt32 = 0
        var bytes: UInt64 = 0
        var offset = UInt64(channel) * chunkSize
        var next = start(sequence, offset)
        do throws(MigrationServiceError) {
            try await send(start: start, next: &next, sequence: &sequence, bytes: &bytes, offset: &offset,
                           compressor: compressor, chunkSize: chunkSize, stride: stride)
        } catch {
            // A failed channel waits for its read ahead: nothing may still hold the file once the move returns.
            if let next { _ = try? await FileWork.finish(next, stage: .source) }
            throw error
        }
        try await conn.send(.channelDone(chunks: sequence, bytes: bytes))
        guard case .channelDone(let c, let b) = try await conn.receive(), c == sequence, b == bytes else {
            throw MigrationServiceError.protocolViolation("the destination did not confirm channel \(channel)", stage: .source)
        }
    }

    private func send(start: (UInt32, UInt64) -> FileWork.Pending<ByteBuffer>?, next: inout FileWork.Pending<ByteBuffer>?,
                      sequence: inout UInt32, bytes: inout UInt64, offset: inout UInt64, compressor: ChunkCompressor?,
                      chunkSize: UInt64, stride: UInt64) async throws(MigrationServiceError) {
        let size = offer.size
        while let pending = next {
            let data = try await FileWork.finish(pending, stage: .source)
            // The pool reads the next chunk while this one is compressed, sealed and sent.
            next = start(sequence &+ 1, offset + stride)
            let length = Int(min(chunkSize, size - offset))
            var plain: ByteBuffer
            if let compressor {
                plain = conn.allocator.buffer(capacity: 1 + ChunkHeader.encodedSize + length + Self.slack)
                plain.writeInteger(WireMessage.Kind.chunk.rawValue)
                var header = ChunkHeader(sequence: sequence, offset: offset, length: UInt32(length), flags: 0)
                let headerIndex = plain.writerIndex
                header.encode(into: &plain)
                header.flags = try compressor.encode(data, into: &plain)
                plain.setInteger(header.flags, at: headerIndex + ChunkHeader.encodedSize - 1)
            } else {
                plain = data
            }
            try await conn.sendSealed(plaintext: &plain)
            sequence &+= 1
            bytes += UInt64(length)
            await sent.add(UInt64(length))
            offset += stride
        }
    }
}
