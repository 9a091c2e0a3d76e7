import GSS
import NIOCore
import NIOPosix
import Synchronization
import WindowsStatus

/// One framed connection, used by one task: sends and receives protocol messages, in the clear
/// before authentication and sealed after it — suite 1 (GSS wrap, confidentiality + integrity) or
/// suite 2 (AES-256-GCM, keys from GSS_Pseudo_random), as the opening negotiated.
final class FrameConnection {
    private var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    let localAddress: SocketAddress?
    let remoteAddress: SocketAddress?
    /// The side this end is: errors it raises name this stage.
    let stage: MigrationStage
    /// Set once the security context is established; from then on only sealed frames (and error
    /// frames) are accepted.
    var protection: (any MessageProtection)? {
        didSet { authenticated.set(isProtected) }
    }
    /// Whether the peer sent an `error` frame (it failed on its own side, as opposed to the link failing).
    private(set) var receivedError = false
    /// Suite 2's protection, set instead of ``protection`` when the opening chose it.
    var aead: AEADStreamProtection? {
        didSet { authenticated.set(isProtected) }
    }
    /// Whether frames are sealed from now on (either suite).
    var isProtected: Bool { protection != nil || aead != nil }
    /// The versions and suites this end offers (set before the opening).
    var settings = ProtocolSettings()
    /// The migration and channel this connection is for (client side, set before the opening).
    var binding = ConnectionBinding.none
    /// What the opening agreed (nil before hello / helloAck).
    var negotiation: SuiteNegotiation?
    /// The protocol version the opening chose (1 until then, and for a version 1 peer): it lays out the offer.
    var version: UInt16 { negotiation?.version ?? 1 }
    /// Whether the peer has authenticated (read by the listener's handshake timer).
    let authenticated = Flag()
    /// A server connection's receive activity and a way to close it (set by the listener): the
    /// destination's progress timeout uses them.
    var activity: ConnectionActivity?
    var close: (@Sendable () -> Void)?
    let allocator = ByteBufferAllocator()

    init(channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>, inbound: NIOAsyncChannelInboundStream<ByteBuffer>,
         outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, stage: MigrationStage) {
        self.inbound = inbound.makeAsyncIterator()
        self.outbound = outbound
        self.localAddress = channel.channel.localAddress
        self.remoteAddress = channel.channel.remoteAddress
        self.stage = stage
    }

    /// A server connection's pipeline: the activity stamp, the frame decoder with a limit that starts at
    /// `unauthenticatedLimit`, then an async channel.
    static func initializeServer(_ channel: Channel, peer: String, unauthenticatedLimit: Int) -> EventLoopFuture<ServerChild> {
        channel.eventLoop.makeCompletedFuture {
            let limit = FrameLimit(unauthenticatedLimit)
            let activity = ConnectionActivity()
            try setBulkOptions(channel)
            try channel.pipeline.syncOperations.addHandler(ActivityStampHandler(activity))
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(limit: limit)))
            return ServerChild(channel: ChildChannel(try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)),
                               limit: limit, activity: activity, peer: peer)
        }
    }

    /// The pipeline of every migration connection: the frame decoder, then an async channel.
    static func initialize(_ channel: Channel) -> EventLoopFuture<NIOAsyncChannel<ByteBuffer, ByteBuffer>> {
        channel.eventLoop.makeCompletedFuture {
            try setBulkOptions(channel)
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder()))
            return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
        }
    }

    /// Outgoing bytes an async writer may queue before it waits for the socket: a few sealed chunks, so the
    /// next chunk is sealed while the kernel sends the last (NIO's default, 64 KiB, is less than one chunk and
    /// would make every chunk wait for the previous one to leave).
    static let writeBufferWaterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 4 << 20, high: 8 << 20)

    /// Reads of up to 1 MiB at a time (NIO's default adapts up to 64 KiB): a 1 MiB chunk arrives in a few reads.
    static let receiveAllocator = AdaptiveRecvByteBufferAllocator(minimum: 64 << 10, initial: 256 << 10, maximum: 1 << 20)

    /// The options of a connection that carries chunks (migration connections, and the live path's QEMU sockets).
    static func setBulkOptions(_ channel: Channel) throws {
        guard let sync = channel.syncOptions else { return }
        try sync.setOption(ChannelOptions.writeBufferWaterMark, value: writeBufferWaterMark)
        try sync.setOption(ChannelOptions.recvAllocator, value: receiveAllocator)
    }

    // MARK: Receiving

    /// The next frame's payload; a closed connection or a framing violation throws.
    func receiveFrame() async throws(MigrationServiceError) -> ByteBuffer {
        do {
            guard let frame = try await inbound.next() else {
                throw MigrationServiceError.connectionLost("the peer closed the connection", stage: stage)
            }
            return frame
        } catch let e as MigrationServiceError {
            throw e
        } catch let e as FramingError {
            throw MigrationServiceError.protocolViolation(e.description, stage: stage)
        } catch {
            throw MigrationServiceError.connectionLost("\(error)", stage: stage)
        }
    }

    /// The next message. Sealed frames are unsealed (after authentication only); an error frame
    /// from the peer is thrown as the peer's error.
    func receive() async throws(MigrationServiceError) -> WireMessage {
        var frame = try await receiveFrame()
        guard let kind = frame.getInteger(at: frame.readerIndex, as: UInt8.self) else {
            throw .protocolViolation("empty frame", stage: stage)
        }
        let message: WireMessage
        if kind == WireMessage.Kind.aead.rawValue {
            guard let aead else {
                throw .protocolViolation(protection == nil ? "suite 2 frame before authentication"
                                         : "suite 2 frame on a suite 1 connection", stage: stage)
            }
            message = try open(&frame, aead)
        } else if kind == WireMessage.Kind.sealed.rawValue {
            guard let protection else {
                throw .protocolViolation(aead == nil ? "sealed message before authentication"
                                         : "suite 1 frame on a suite 2 connection", stage: stage)
            }
            frame.moveReaderIndex(forwardBy: 1)
            message = try unseal(&frame, protection)
        } else {
            message = try decode(frame)
            guard message.isClear else {
                throw .protocolViolation("\(message.kind) must travel sealed", stage: stage)
            }
            if isProtected, message.kind != .error {
                throw .protocolViolation("clear \(message.kind) after authentication", stage: stage)
            }
        }
        if case .error(let e) = message {
            receivedError = true
            throw MigrationServiceError(wire: e)
        }
        return message
    }

    /// The result of a seal or unseal, or an integrity error with the GSS failure.
    private func protect<T>(_ result: Result<T, GSSError>, failure reason: String) throws(MigrationServiceError) -> T {
        switch result {
        case .success(let v): return v
        case .failure(let e):
            throw .failure(.integrity, e.windowsStatus, stage: stage, reason: reason, detail: e.description, gss: e)
        }
    }

    private func decode(_ buffer: ByteBuffer) throws(MigrationServiceError) -> WireMessage {
        do {
            return try WireMessage.decode(buffer, version: version)
        } catch {
            if error.unknownPackage {
                throw .failure(.authentication, .packageNotFound, stage: stage,
                               reason: "The requested authentication kind is not supported", detail: error.description)
            }
            throw .protocolViolation(error.description, stage: stage)
        }
    }

    /// The result of a suite-2 seal or open, or an integrity error with the status suite 1 gives.
    private func protect<T>(_ result: Result<T, AEADStreamError>, failure reason: String) throws(MigrationServiceError) -> T {
        switch result {
        case .success(let v): return v
        case .failure(let e):
            throw .failure(.integrity, e.windowsStatus, stage: stage, reason: reason, detail: e.description, gss: e.gssError)
        }
    }

    private func open(_ frame: inout ByteBuffer, _ aead: AEADStreamProtection) throws(MigrationServiceError) -> WireMessage {
        let range = try protect(frame.withUnsafeMutableReadableBytes { raw in
            Result { () throws(AEADStreamError) in try aead.open(raw) }
        }, failure: "A protected migration message was rejected")
        guard let plain = frame.getSlice(at: frame.readerIndex + range.lowerBound, length: range.count) else {
            throw .protocolViolation("suite 2 plaintext outside the frame", stage: stage)
        }
        return try inner(plain)
    }

    private func inner(_ plain: ByteBuffer) throws(MigrationServiceError) -> WireMessage {
        let message = try decode(plain)
        guard !message.isClear || message.kind == .error else {
            throw .protocolViolation("\(message.kind) inside a sealed message", stage: stage)
        }
        return message
    }

    private func unseal(_ token: inout ByteBuffer, _ protection: any MessageProtection) throws(MigrationServiceError) -> WireMessage {
        let iov = try protect(token.withUnsafeMutableReadableBytes { raw in
            Result { () throws(GSSError) in try protection.unseal(raw) }
        }, failure: "A protected migration message was rejected")
        guard iov.confidential else {
            throw .failure(.integrity, .messageAltered, stage: stage, reason: "A migration message was not encrypted",
                           detail: "rule S1: every message after authentication is sealed with confidentiality")
        }
        guard let plain = token.getSlice(at: token.readerIndex + iov.range.lowerBound, length: iov.range.count) else {
            throw .protocolViolation("unwrap returned a range outside the token", stage: stage)
        }
        return try inner(plain)
    }

    // MARK: Sending

    /// Sends `message` in the clear (hello, token, error before authentication).
    func sendClear(_ message: WireMessage) async throws(MigrationServiceError) {
        var b = allocator.buffer(capacity: 64)
        b.writeInteger(UInt32(0))
        message.encode(into: &b, version: version)
        b.setInteger(UInt32(b.readableBytes - 4), at: 0)
        try await write([b])
    }

    /// Sends `message` sealed.
    func send(_ message: WireMessage) async throws(MigrationServiceError) {
        var plain = allocator.buffer(capacity: 64)
        message.encode(into: &plain, version: version)
        try await sendSealed(plaintext: &plain)
    }

    /// Seals `plaintext` (kind + body) in place and sends it: no copy of the data.
    func sendSealed(plaintext: inout ByteBuffer) async throws(MigrationServiceError) {
        try await write(sealedFrame(&plaintext))
    }

    /// The buffers of one sealed frame (length, kind, GSS header | data sealed in place | padding,
    /// trailer). Tests replay or reorder them.
    func sealedFrame(_ plaintext: inout ByteBuffer) throws(MigrationServiceError) -> [ByteBuffer] {
        if let aead { return try aeadFrame(&plaintext, aead) }
        guard let protection else { throw .protocolViolation("sending sealed before authentication", stage: stage) }
        let iov = try protect(plaintext.withUnsafeMutableReadableBytes { raw in
            Result { () throws(GSSError) in try protection.seal(raw) }
        }, failure: "A migration message could not be protected")
        let length = 1 + iov.header.count + plaintext.readableBytes + iov.padding.count + iov.trailer.count
        guard length <= WireProtocol.maximumFrameLength else {
            throw .protocolViolation("sealed message of \(length) bytes exceeds the frame limit", stage: stage)
        }
        var head = allocator.buffer(capacity: 5 + iov.header.count)
        head.writeInteger(UInt32(length))
        head.writeInteger(WireMessage.Kind.sealed.rawValue)
        head.writeBytes(iov.header)
        var tail = allocator.buffer(capacity: iov.padding.count + iov.trailer.count)
        tail.writeBytes(iov.padding)
        tail.writeBytes(iov.trailer)
        return tail.readableBytes > 0 ? [head, plaintext, tail] : [head, plaintext]
    }

    /// Suite 2: header (length, kind, sequence) | plaintext sealed in place | tag.
    private func aeadFrame(_ plaintext: inout ByteBuffer, _ aead: AEADStreamProtection) throws(MigrationServiceError) -> [ByteBuffer] {
        let length = AEADStreamProtection.overhead + plaintext.readableBytes
        guard length <= WireProtocol.maximumFrameLength else {
            throw .protocolViolation("sealed message of \(length) bytes exceeds the frame limit", stage: stage)
        }
        var head = allocator.buffer(repeating: 0, count: AEADStreamProtection.headerLength)
        var tail = allocator.buffer(repeating: 0, count: AEADStreamProtection.tagLength)
        let result = plaintext.withUnsafeMutableReadableBytes { data in
            head.withUnsafeMutableReadableBytes { h in
                tail.withUnsafeMutableReadableBytes { t in
                    Result { () throws(AEADStreamError) in try aead.seal(data, header: h, tag: t) }
                }
            }
        }
        try protect(result, failure: "A migration message could not be protected")
        return [head, plaintext, tail]
    }

    /// Tells the peer why this end stops: sealed when possible, in the clear otherwise. Never throws.
    /// Whether an error frame was sent on this connection.
    private(set) var sentError = false

    /// Reads and drops frames until the peer closes (or the channel is closed under it). A server
    /// calls it after sending an error and before closing: closing with unread data in the socket
    /// makes the kernel send a reset, which can destroy the error frame before the peer reads it.
    func drain() async {
        while (try? await receiveFrame()) != nil {}
    }

    func sendError(_ error: MigrationServiceError) async {
        sentError = true
        if isProtected {
            do { try await send(.error(error.wire)); return } catch {}
        }
        try? await sendClear(.error(error.wire))
    }

    /// Writes raw bytes (tests use it to send hostile frames).
    func write(_ buffers: [ByteBuffer]) async throws(MigrationServiceError) {
        do {
            try await outbound.write(contentsOf: buffers)
        } catch {
            throw MigrationServiceError.connectionLost("write failed: \(error)", stage: stage)
        }
    }
}

/// A boolean shared with another thread; actions registered with ``whenSet(_:)`` run once, when it becomes true.
final class Flag: Sendable {
    private let value = Mutex<(set: Bool, actions: [@Sendable () -> Void])>((false, []))
    var isSet: Bool { value.withLock { $0.set } }
    func set(_ v: Bool) {
        let run = value.withLock { s -> [@Sendable () -> Void] in
            defer { s.set = v }
            guard v, !s.set else { return [] }
            defer { s.actions = [] }
            return s.actions
        }
        for action in run { action() }
    }
    /// Runs `action` when the flag becomes true (at once if it is).
    func whenSet(_ action: @escaping @Sendable () -> Void) {
        let now = value.withLock { s -> Bool in
            if s.set { return true }
            s.actions.append(action)
            return false
        }
        if now { action() }
    }
}
