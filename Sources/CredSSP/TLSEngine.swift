import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOSSL
import NIOTLS

/// An in-memory TLS endpoint: swift-nio-ssl's handler inside an in-memory channel.
///
/// Feed it the peer's TLS records, collect the records to send: the CredSSP state machines treat them as
/// opaque tokens, as SSPI's Schannel does. Uses `NIOAsyncTestingChannel` (the thread-safe in-memory channel of
/// `NIOEmbedded`) so the engine can live in an actor that hops threads.
final class TLSEngine: Sendable {
    private let channel: NIOAsyncTestingChannel
    private let state: NIOLockedValueBox<Bool>
    private let closed = NIOLockedValueBox(false)

    private init(channel: NIOAsyncTestingChannel, state: NIOLockedValueBox<Bool>) {
        self.channel = channel
        self.state = state
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

    private static func make(_ handler: @escaping @Sendable () throws -> NIOSSLHandler) async throws -> TLSEngine {
        let channel = NIOAsyncTestingChannel()
        let state = NIOLockedValueBox(false)
        do {
            try await channel.testingEventLoop.executeInContext {
                try channel.pipeline.syncOperations.addHandler(handler())
                try channel.pipeline.syncOperations.addHandler(HandshakeRecorder(state: state))
            }
            try await channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1))
        } catch {
            throw Self.map(error)
        }
        return TLSEngine(channel: channel, state: state)
    }

    /// True once the TLS handshake finished on this side.
    var handshakeComplete: Bool { state.withLockedValue { $0 } }

    /// Consumes TLS records from the peer.
    func feed(_ records: [UInt8]) async throws {
        guard !records.isEmpty else { return }
        guard !closed.withLockedValue({ $0 }) else {
            throw CredSSPError(.invalidState, .invalidHandle, "The TLS session is closed")
        }
        do {
            try await channel.writeInbound(ByteBuffer(bytes: records))
            try await channel.throwIfErrorCaught()
        } catch {
            throw Self.map(error)
        }
    }

    /// Encrypts application data; the records come out of ``drainRecords()``.
    func write(_ plaintext: [UInt8]) async throws {
        do {
            try await channel.writeOutbound(ByteBuffer(bytes: plaintext))
            try await channel.throwIfErrorCaught()
        } catch {
            throw Self.map(error)
        }
    }

    /// All TLS records produced so far, concatenated.
    func drainRecords() async throws -> [UInt8] {
        var out: [UInt8] = []
        while let buffer = try await channel.readOutbound(as: ByteBuffer.self) {
            out.append(contentsOf: buffer.readableBytesView)
        }
        return out
    }

    /// All application data decrypted so far, concatenated.
    func readPlaintext() async throws -> [UInt8] {
        var out: [UInt8] = []
        while let buffer = try await channel.readInbound(as: ByteBuffer.self) {
            out.append(contentsOf: buffer.readableBytesView)
        }
        return out
    }

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

/// Records the handshake's completion.
private final class HandshakeRecorder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    let state: NIOLockedValueBox<Bool>

    init(state: NIOLockedValueBox<Bool>) { self.state = state }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event {
            state.withLockedValue { $0 = true }
        }
        context.fireUserInboundEventTriggered(event)
    }
}
