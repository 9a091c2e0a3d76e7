import NIOCore
import NIOEmbedded
import NIOSSL
import NIOTLS
import Synchronization

/// An in-memory TLS endpoint: swift-nio-ssl's handler inside NIO's `EmbeddedChannel`.
///
/// Feed it the peer's TLS records, collect the records to send: the CredSSP state machines treat them as
/// opaque tokens, as SSPI's Schannel does. `EmbeddedChannel` must be used from the thread that created it; the
/// CredSSP actors run on a thread of their own (``CredSSPSessionThread``), so every call is a plain synchronous one.
final class TLSEngine {
    /// Internal for the tests (a closed engine's channel must be freed).
    let channel: EmbeddedChannel
    private let recorder: HandshakeRecorder
    private var closed = false

    private init(channel: EmbeddedChannel, recorder: HandshakeRecorder) {
        self.channel = channel
        self.recorder = recorder
    }

    /// A client endpoint; its first output is the ClientHello.
    static func client(configuration: TLSConfiguration, serverHostname: String?) throws -> TLSEngine {
        try make(try NIOSSLClientHandler(context: NIOSSLContext(configuration: configuration), serverHostname: serverHostname))
    }

    /// A client endpoint on a prepared context (``TLSContexts``).
    static func client(context: NIOSSLContext, serverHostname: String?) throws -> TLSEngine {
        try make(try NIOSSLClientHandler(context: context, serverHostname: serverHostname))
    }

    /// A server endpoint.
    static func server(configuration: TLSConfiguration) throws -> TLSEngine {
        try make(NIOSSLServerHandler(context: try NIOSSLContext(configuration: configuration)))
    }

    /// A server endpoint on a prepared context (``TLSContexts``).
    static func server(context: NIOSSLContext) throws -> TLSEngine {
        try make(NIOSSLServerHandler(context: context))
    }

    private static func make(_ handler: @autoclosure () throws -> NIOSSLHandler) throws -> TLSEngine {
        let channel = EmbeddedChannel()
        let recorder = HandshakeRecorder()
        do {
            try channel.pipeline.syncOperations.addHandler(handler())
            try channel.pipeline.syncOperations.addHandler(recorder)
            try channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        } catch {
            throw Self.map(error)
        }
        return TLSEngine(channel: channel, recorder: recorder)
    }

    /// True once the TLS handshake finished on this side.
    var handshakeComplete: Bool { recorder.complete }

    /// Consumes TLS records from the peer.
    func feed(_ records: [UInt8]) throws {
        guard !records.isEmpty else { return }
        guard !closed else { throw CredSSPError(.invalidState, .invalidHandle, "The TLS session is closed") }
        do {
            try channel.writeInbound(channel.allocator.buffer(bytes: records))
            channel.embeddedEventLoop.run()
            try channel.throwIfErrorCaught()
        } catch {
            throw Self.map(error)
        }
    }

    /// Encrypts application data; the records come out of ``drainRecords()``.
    func write(_ plaintext: [UInt8]) throws {
        do {
            try channel.writeOutbound(channel.allocator.buffer(bytes: plaintext))
            channel.embeddedEventLoop.run()
            try channel.throwIfErrorCaught()
        } catch {
            throw Self.map(error)
        }
    }

    /// All TLS records produced so far, concatenated.
    func drainRecords() throws -> [UInt8] {
        var out: [UInt8] = []
        do {
            while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
                out.append(contentsOf: buffer.readableBytesView)
            }
        } catch {
            throw Self.map(error)
        }
        return out
    }

    /// All application data decrypted so far, concatenated.
    func readPlaintext() throws -> [UInt8] {
        var out: [UInt8] = []
        do {
            while let buffer = try channel.readInbound(as: ByteBuffer.self) {
                out.append(contentsOf: buffer.readableBytesView)
            }
        } catch {
            throw Self.map(error)
        }
        return out
    }

    /// The peer's leaf certificate (DER), after the handshake.
    func peerCertificateDER() throws -> [UInt8]? {
        try channel.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self).peerCertificate?.toDERBytes()
    }

    /// The negotiated TLS version, after the handshake.
    func tlsVersion() throws -> TLSVersion? {
        if let client = try? channel.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self) {
            return client.tlsVersion
        }
        return try channel.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self).tlsVersion
    }

    /// Ends the session: later records are refused, and the channel is closed, which frees it with the TLS session
    /// (a channel that is never closed keeps its pipeline, handlers and BoringSSL's `SSL` alive: a reference cycle).
    /// Must run on the thread that made the engine, like every other call.
    func close() {
        guard !closed else { return }
        closed = true
        channel.close(promise: nil)
        // swift-nio-ssl waits for the peer's close_notify up to a timeout: let it pass at once (nothing is sent).
        channel.embeddedEventLoop.advanceTime(by: .hours(1))
        _ = try? channel.finish(acceptAlreadyClosed: true)
    }

    /// A weak reference to an engine's channel, readable from any thread (tests: a finished or abandoned session's
    /// channel must be freed).
    final class Probe: @unchecked Sendable {
        private weak var channel: EmbeddedChannel?
        init(_ engine: TLSEngine) { channel = engine.channel }
        /// True while the channel is still in memory.
        var isAlive: Bool { channel != nil }
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
    private(set) var complete = false

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event {
            complete = true
        }
        context.fireUserInboundEventTriggered(event)
    }
}

/// TLS contexts (BoringSSL's `SSL_CTX`: certificate, key, versions, groups) made once and shared by the sessions
/// that use the same ones, as a TLS server keeps one context for all its connections: making one per exchange cost
/// a context, the key's installation and the certificate's parsing every time. `NIOSSLContext` is thread-safe.
///
/// Entries match by the identity of the certificate and key objects (held strongly, so an identity cannot be
/// reused while its entry exists) and by the TLS versions; at most ``capacity`` entries, the oldest dropped first.
/// Client contexts are shared only without certificate verification (a CA file is read again for every session,
/// so a changed file takes effect).
enum TLSContexts {
    struct Server: Sendable {
        let context: NIOSSLContext
        /// The leaf certificate's public key (CredSSP's `pubKeyAuth` binding).
        let key: CertificatePublicKey
    }

    private struct ServerEntry {
        let chain: [NIOSSLCertificate]
        let privateKey: NIOSSLPrivateKey
        let minimum: TLSVersion
        let maximum: TLSVersion
        let server: Server
    }

    private struct ClientEntry {
        let minimum: TLSVersion
        let maximum: TLSVersion
        let context: NIOSSLContext
    }

    static let capacity = 8
    private static let servers = Mutex<[ServerEntry]>([])
    private static let clients = Mutex<[ClientEntry]>([])

    static func server(chain: [NIOSSLCertificate], privateKey: NIOSSLPrivateKey, minimum: TLSVersion,
                       maximum: TLSVersion) throws -> Server {
        let found = servers.withLock { entries in
            entries.first {
                $0.privateKey === privateKey && $0.minimum == minimum && $0.maximum == maximum
                    && $0.chain.count == chain.count && zip($0.chain, chain).allSatisfy { $0 === $1 }
            }?.server
        }
        if let found { return found }
        guard let leaf = chain.first else {
            throw CredSSPError(.tls, .invalidParameter, "The server needs a certificate")
        }
        let key: CertificatePublicKey
        do {
            key = try CertificatePublicKey(certificateDER: try leaf.toDERBytes())
        } catch {
            throw CredSSPError(.tls, .invalidParameter, "The server certificate cannot be read: \(error)")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(privateKey))
        configuration.minimumTLSVersion = minimum
        configuration.maximumTLSVersion = maximum
        let server: Server
        do {
            server = Server(context: try NIOSSLContext(configuration: configuration), key: key)
        } catch {
            throw CredSSPError(.tls, .invalidParameter, "The server certificate and key cannot be used for TLS: \(error)")
        }
        servers.withLock { entries in
            if entries.count >= capacity { entries.removeFirst() }
            entries.append(ServerEntry(chain: chain, privateKey: privateKey, minimum: minimum, maximum: maximum, server: server))
        }
        return server
    }

    /// A client context without certificate verification (the CredSSP binding or a pin checks the key).
    static func unverifiedClient(minimum: TLSVersion, maximum: TLSVersion) throws -> NIOSSLContext {
        if let found = clients.withLock({ $0.first { $0.minimum == minimum && $0.maximum == maximum }?.context }) {
            return found
        }
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = minimum
        configuration.maximumTLSVersion = maximum
        configuration.certificateVerification = .none
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw TLSEngine.map(error)
        }
        clients.withLock { entries in
            if entries.count >= capacity { entries.removeFirst() }
            entries.append(ClientEntry(minimum: minimum, maximum: maximum, context: context))
        }
        return context
    }
}
