import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOSSL
import NIOTLS

/// An in-memory TLS endpoint: swift-nio-ssl's handler inside an in-memory channel.
///
/// Feed it the peer's TLS records, collect the records to send: the CredSSP state machines treat them as
/// opaque tokens, as SSPI's Schannel does. Uses `NIOAsyncTestingChannel` (the thread-safe in-memory channel of
/// `NIOEmbedded`) so the engine can live in an actor that hops threads. Every call into the pipeline costs a hop
/// to the channel's queue, so each operation makes one: handlers at both ends of the pipeline (``TLSEngineIO``)
/// collect the records and the plaintext, which are then read without a hop.
final class TLSEngine: Sendable {
    private let channel: NIOAsyncTestingChannel
    private let io: TLSEngineIO
    private let closed = NIOLockedValueBox(false)

    private init(channel: NIOAsyncTestingChannel, io: TLSEngineIO) {
        self.channel = channel
        self.io = io
    }

    /// A client endpoint; its first output is the ClientHello.
    static func client(configuration: TLSConfiguration, serverHostname: String?) async throws -> TLSEngine {
        try await make { try NIOSSLClientHandler(context: NIOSSLContext(configuration: configuration),
                                                  serverHostname: serverHostname) }
    }

    /// A server endpoint.
    static func server(configuration: TLSConfiguration) async throws -> TLSEngine {
        try await make { NIOSSLServerHandler(context: try NIOSSLContext(configuration: configuration)) }
    }

    /// A server endpoint from a prepared context (no per-exchange certificate and key loading).
    static func server(context: NIOSSLContext) async throws -> TLSEngine {
        try await make { NIOSSLServerHandler(context: context) }
    }

    private static func make(_ handler: @escaping @Sendable () throws -> NIOSSLHandler) async throws -> TLSEngine {
        let channel = NIOAsyncTestingChannel()
        let io = TLSEngineIO()
        do {
            try await channel.testingEventLoop.executeInContext {
                try channel.pipeline.syncOperations.addHandler(TLSEngineIO.RecordSink(io: io))
                try channel.pipeline.syncOperations.addHandler(handler())
                try channel.pipeline.syncOperations.addHandler(TLSEngineIO.PlaintextSink(io: io))
            }
            try await channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1))
            try io.throwIfFailed()
        } catch {
            throw Self.map(error)
        }
        return TLSEngine(channel: channel, io: io)
    }

    /// True once the TLS handshake finished on this side.
    var handshakeComplete: Bool { io.handshakeComplete }

    /// Consumes TLS records from the peer.
    func feed(_ records: [UInt8]) async throws {
        guard !records.isEmpty else { return }
        guard !closed.withLockedValue({ $0 }) else {
            throw CredSSPError(.invalidState, .invalidHandle, "The TLS session is closed")
        }
        let channel = self.channel
        let io = self.io
        do {
            try await channel.testingEventLoop.executeInContext {
                channel.pipeline.fireChannelRead(ByteBuffer(bytes: records))
                channel.pipeline.fireChannelReadComplete()
                try io.throwIfFailed()
            }
        } catch {
            throw Self.map(error)
        }
    }

    /// Encrypts application data; the records come out of ``drainRecords()``.
    func write(_ plaintext: [UInt8]) async throws {
        let channel = self.channel
        let io = self.io
        do {
            try await channel.testingEventLoop.executeInContext {
                channel.writeAndFlush(ByteBuffer(bytes: plaintext), promise: nil)
                try io.throwIfFailed()
            }
        } catch {
            throw Self.map(error)
        }
    }

    /// All TLS records produced so far, concatenated.
    func drainRecords() async throws -> [UInt8] { io.takeRecords() }

    /// All application data decrypted so far, concatenated.
    func readPlaintext() async throws -> [UInt8] { io.takePlaintext() }

    /// The peer's leaf certificate (DER), after the handshake.
    func peerCertificateDER() async throws -> [UInt8]? {
        let channel = self.channel
        return try await channel.testingEventLoop.executeInContext {
            try channel.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self).peerCertificate?.toDERBytes()
        }
    }

    /// The negotiated TLS version, after the handshake.
    func tlsVersion() async throws -> TLSVersion? {
        let channel = self.channel
        return try await channel.testingEventLoop.executeInContext {
            if let client = try? channel.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self) {
                return client.tlsVersion
            }
            return try channel.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self).tlsVersion
        }
    }

    /// Ends the session: later records are refused.
    func close() async {
        closed.withLockedValue { $0 = true }
    }

    static func map(_ error: any Error) -> CredSSPError {
        if let error = error as? CredSSPError { return error }
        if case NIOSSLError.handshakeFailed(let inner) = error, "\(inner)".contains("CERTIFICATE_VERIFY_FAILED") {
            return CredSSPError(.serverCertificateRejected, .untrustedRoot,
                                "The server certificate failed verification: \(inner)")
        }
        return CredSSPError(.tls, .illegalMessage, "TLS failed: \(error)")
    }
}

/// What the TLS engine's pipeline produced: records for the peer, decrypted plaintext, the handshake's
/// completion and the first error. Written by the two sink handlers on the channel's queue, read by the engine.
final class TLSEngineIO: Sendable {
    private struct State {
        var records: [UInt8] = []
        var plaintext: [UInt8] = []
        var handshakeComplete = false
        var error: (any Error)?
    }

    private let state = NIOLockedValueBox(State())

    var handshakeComplete: Bool { state.withLockedValue { $0.handshakeComplete } }

    func takeRecords() -> [UInt8] { state.withLockedValue { state in defer { state.records = [] }; return state.records } }

    func takePlaintext() -> [UInt8] {
        state.withLockedValue { state in defer { state.plaintext = [] }; return state.plaintext }
    }

    func throwIfFailed() throws {
        if let error = state.withLockedValue({ $0.error }) { throw error }
    }

    /// The wire: first in the pipeline, it keeps the records the TLS handler writes.
    final class RecordSink: ChannelOutboundHandler, RemovableChannelHandler {
        typealias OutboundIn = ByteBuffer
        let io: TLSEngineIO
        init(io: TLSEngineIO) { self.io = io }

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            let buffer = unwrapOutboundIn(data)
            io.state.withLockedValue { $0.records.append(contentsOf: buffer.readableBytesView) }
            promise?.succeed()
        }

        func flush(context: ChannelHandlerContext) {}
    }

    /// The application: last in the pipeline, it keeps the plaintext, the handshake's completion and errors.
    final class PlaintextSink: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = ByteBuffer
        let io: TLSEngineIO
        init(io: TLSEngineIO) { self.io = io }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            io.state.withLockedValue { $0.plaintext.append(contentsOf: buffer.readableBytesView) }
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if let event = event as? TLSUserEvent, case .handshakeCompleted = event {
                io.state.withLockedValue { $0.handshakeComplete = true }
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            io.state.withLockedValue { if $0.error == nil { $0.error = error } }
        }
    }
}
