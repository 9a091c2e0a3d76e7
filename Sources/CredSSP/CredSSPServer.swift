import NIOSSL
import WindowsStatus

/// What the server wants done after a step.
public enum CredSSPServerStep: Sendable {
    /// Send these bytes (possibly empty) and call ``CredSSPServer/step(_:)`` with the client's answer.
    case send([UInt8])
    /// The client is authenticated and delegated these credentials; nothing more to send.
    case finished(CredSSPCredentials)
}

/// The CredSSP acceptor ([MS-CSSP] versions 2–6) as a sans-IO state machine: bytes in, bytes out.
///
/// On failure the thrown ``CredSSPError`` may carry ``CredSSPError/replyToPeer``: a TSRequest with `errorCode`
/// (versions 3, 4 and 6) to send before closing. The actor runs on a thread of its own (TLS and the possibly
/// blocking inner steps run there, never on an event loop); ``run(frames:send:)`` drives a whole exchange over a
/// framed transport and returns the delegated credentials.
public actor CredSSPServer {
    private enum State { case handshake, awaitingFirstRequest, negotiating, awaitingCredentials, finished, failed }

    private let inner: any CredSSPInnerAuthenticator
    private let policy: CredSSPPolicy
    /// Shared with the other servers of the same certificate, key and versions (``TLSContexts``).
    private let tlsContext: NIOSSLContext
    private let key: CertificatePublicKey
    private let session = SessionTLS()
    private var tls: TLSEngine? {
        get { session.engine }
        set { session.engine = newValue }
    }
    /// This actor's thread, one of a small shared set: TLS and the inner authentication (which may block on a KDC)
    /// run there.
    private let thread: CredSSPSessionThread
    public nonisolated var unownedExecutor: UnownedSerialExecutor { thread.asUnownedSerialExecutor() }
    private var state: State = .handshake
    /// The protocol version both sides use (the smaller of the two announced).
    public private(set) var negotiatedVersion: Int?
    /// The TLS version of the channel, once established.
    public private(set) var tlsVersion: TLSVersion?
    /// The version the client announced in its first TSRequest.
    public private(set) var clientVersion: Int?
    /// On a byte stream (RDP) a TSRequest may arrive in pieces: decrypted bytes wait here until one is whole.
    private var streaming = false
    private var pending: [UInt8] = []

    /// - Parameters:
    ///   - certificateChain: the server's TLS certificate (leaf first).
    ///   - privateKey: its key.
    ///   - inner: the acceptor side of the inner authentication.
    public init(certificateChain: [NIOSSLCertificate], privateKey: NIOSSLPrivateKey,
                inner: sending any CredSSPInnerAuthenticator, policy: CredSSPPolicy = CredSSPPolicy()) throws {
        try policy.validate()
        let shared = try TLSContexts.server(chain: certificateChain, privateKey: privateKey,
                                            minimum: policy.minimumTLSVersion, maximum: policy.maximumTLSVersion)
        self.tlsContext = shared.context
        self.key = shared.key
        self.inner = inner
        self.policy = policy
        self.thread = try CredSSPSessionThread.assign()
    }

    /// The session thread closes the TLS engine (bound to it), also when the exchange was abandoned half-way (a
    /// peer that went away, a timeout). Not an `isolated deinit`: with one, Swift 6.3's optimizer hits a cycle
    /// (ActorIsolationRequest on this deinit) in release builds of modules that use this type.
    deinit { thread.end(session) }

    /// Advances the exchange with the client's next token.
    public func step(_ input: [UInt8]) async throws(CredSSPError) -> CredSSPServerStep {
        do {
            return try advance(input)
        } catch {
            var failure = (error as? CredSSPError) ?? CredSSPError(.innerAuthenticationFailed,
                                                                    inner.windowsStatus(for: error), "\(error)")
            if failure.replyToPeer == nil, state != .handshake, let version = negotiatedVersion,
               CredSSPPolicy.errorCodeAllowed(version: version), let engine = tls {
                let request = TSRequest(version: policy.version, errorCode: failure.status.code)
                if let reply = try? send(engine, request) { failure = failure.replying(reply) }
            }
            state = .failed
            inner.dispose()
            tls?.close()
            throw failure
        }
    }

    private func advance(_ input: [UInt8]) throws -> CredSSPServerStep {
        switch state {
        case .handshake:
            let engine: TLSEngine
            if let tls { engine = tls } else {
                engine = try TLSEngine.server(context: tlsContext)
                tls = engine
            }
            try checkTokenSize(input)
            try engine.feed(input)
            let records = try engine.drainRecords()
            guard engine.handshakeComplete else { return .send(records) }
            tlsVersion = try engine.tlsVersion()
            state = .awaitingFirstRequest
            // The client may send its first TSRequest together with its last handshake records.
            guard let request = try nextRequest(engine, allowNone: true) else { return .send(records) }
            return try handle(request, engine, prefix: records)
        case .awaitingFirstRequest, .negotiating, .awaitingCredentials:
            let engine = try requireTLS()
            try checkTokenSize(input)
            try engine.feed(input)
            guard let request = try nextRequest(engine, allowNone: false) else { return .send([]) }
            return try handle(request, engine, prefix: [])
        case .finished, .failed:
            throw CredSSPError(.invalidState, .invalidHandle, "The CredSSP server has already \(state == .finished ? "finished" : "failed")")
        }
    }

    /// Makes the machine accept TSRequests split over several inputs (a byte stream such as RDP's, where the
    /// runner feeds whatever TLS records have arrived): incomplete ones are kept until the rest arrives.
    func useByteStream() { streaming = true }

    /// The next whole TSRequest decrypted so far; nil when none is there yet (the handshake's last flight, or on a
    /// byte stream a TSRequest still in transit). On a framed transport every client token after the handshake
    /// must hold exactly one TSRequest.
    private func nextRequest(_ engine: TLSEngine, allowNone: Bool) throws -> TSRequest? {
        let plaintext = try engine.readPlaintext()
        guard streaming else {
            if plaintext.isEmpty && allowNone { return nil }
            return try TSRequestCodec.decodeRequest(plaintext, policy: policy)
        }
        pending += plaintext
        guard let length = try TSRequestCodec.wholeElementLength(pending, policy: policy) else { return nil }
        // Only the last TSRequest (the credentials) may be followed at once by the client's next protocol (RDP's
        // MCS Connect Initial): those bytes are not CredSSP's.
        guard length == pending.count || state == .awaitingCredentials else {
            throw CredSSPError.unexpected("The client sent \(pending.count - length) bytes after its TSRequest")
        }
        defer { pending = [] }
        if length < pending.count { return try TSRequestCodec.decodeRequest(Array(pending[0..<length]), policy: policy) }
        return try TSRequestCodec.decodeRequest(pending, policy: policy)
    }

    private func handle(_ request: TSRequest, _ engine: TLSEngine, prefix: [UInt8]) throws -> CredSSPServerStep {
        if state == .awaitingFirstRequest {
            clientVersion = request.version
            let version = min(request.version, policy.version)
            negotiatedVersion = version
            guard version >= policy.minimumVersion else {
                throw CredSSPError(.versionRefused, .unsupportedFunction,
                                   "The client speaks CredSSP version \(request.version), below the minimum \(policy.minimumVersion)")
            }
            state = .negotiating
        }
        if let code = request.errorCode, code != 0 { throw CredSSPError.peer(code) }
        switch state {
        case .negotiating: return try negotiate(request, engine, prefix: prefix)
        case .awaitingCredentials: return try receiveCredentials(request, engine)
        default: throw CredSSPError.unexpected("Unexpected TSRequest")
        }
    }

    /// SPNEGO tokens, then the client's `pubKeyAuth` (once the inner authentication is complete) answered with this
    /// server's.
    private func negotiate(_ request: TSRequest, _ engine: TLSEngine, prefix: [UInt8]) throws -> CredSSPServerStep {
        guard request.authInfo == nil else {
            throw CredSSPError.unexpected("The client sent authInfo before the public-key exchange")
        }
        guard request.negoTokens?.tokens.first != nil || request.pubKeyAuth != nil else {
            throw CredSSPError.unexpected("The client sent neither a token nor pubKeyAuth")
        }
        var out: [UInt8]?
        if let token = request.negoTokens?.tokens.first {
            out = try inner.step(token)
        }
        guard let sealed = request.pubKeyAuth else {
            guard !inner.isComplete || out != nil else {
                throw CredSSPError.unexpected("The client sent neither a token nor pubKeyAuth")
            }
            return .send(prefix + (try send(engine, TSRequest(version: policy.version,
                                                                       negoTokens: NegoData(tokens: [out ?? []])))))
        }
        guard inner.isComplete else {
            throw CredSSPError.unexpected("The client sent pubKeyAuth before the inner authentication completed")
        }
        let version = negotiatedVersion ?? policy.version
        let nonce = try checkPublicKeyBinding(request, sealed, version: version)
        let answer = PublicKeyBinding.server(version: version, nonce: nonce, subjectPublicKey: key.subjectPublicKey)
        let reply = TSRequest(version: policy.version, negoTokens: out.map { NegoData(tokens: [$0]) },
                              pubKeyAuth: try inner.wrap(answer))
        state = .awaitingCredentials
        return .send(prefix + (try send(engine, reply)))
    }

    /// The client's `pubKeyAuth` must be this server's TLS public key (with the client's nonce from version 5 on),
    /// sealed by the inner context; returns that nonce.
    private func checkPublicKeyBinding(_ request: TSRequest, _ sealed: [UInt8], version: Int) throws -> [UInt8]? {
        var nonce: [UInt8]?
        if version >= 5 {
            guard let clientNonce = request.clientNonce, clientNonce.count == 32 else {
                throw CredSSPError(.publicKeyMismatch, .invalidToken,
                                   "CredSSP version \(version) needs a 32-byte clientNonce")
            }
            nonce = clientNonce
        }
        let expected = PublicKeyBinding.client(version: version, nonce: nonce, subjectPublicKey: key.subjectPublicKey)
        try PublicKeyBinding.verify(sealed, expected: expected, inner: inner, peer: "client's",
                                    mismatch: "The client's pubKeyAuth does not match this server's TLS public key: possible man in the middle")
        return nonce
    }

    /// The last TSRequest: the sealed TSCredentials with the user's password.
    private func receiveCredentials(_ request: TSRequest, _ engine: TLSEngine) throws -> CredSSPServerStep {
        guard let sealed = request.authInfo else {
            throw CredSSPError(.invalidCredentials, .invalidToken, "The client's last TSRequest has no authInfo")
        }
        var plain = try inner.unwrap(sealed)
        defer { plain.wipe() }
        var credentials = try TSRequestCodec.decode(TSCredentials.self, plain, what: "TSCredentials")
        defer { credentials.wipe() }
        guard credentials.credType == TSCredentials.passwordCredType else {
            throw CredSSPError(.invalidCredentials, .unknownCredentials,
                               "Credential type \(credentials.credType) is not supported (only passwords, type 1)")
        }
        var password = try TSRequestCodec.decode(TSPasswordCreds.self, credentials.credentials, what: "TSPasswordCreds")
        do {
            try TSRequestCodec.checkString(password.domainName, field: "domain name", policy: policy)
            try TSRequestCodec.checkString(password.userName, field: "user name", policy: policy)
            try TSRequestCodec.checkString(password.password, field: "password", policy: policy)
        } catch {
            password.wipe()
            throw error
        }
        state = .finished
        inner.dispose()
        engine.close()
        return .finished(CredSSPCredentials(wire: password))
    }

    private func checkTokenSize(_ input: [UInt8]) throws {
        let limit = policy.maximumMessageBytes + 4096
        guard input.count <= limit else { throw CredSSPError.tooLarge("TLS token", input.count, limit: limit) }
    }

    private func send(_ engine: TLSEngine, _ request: TSRequest) throws -> [UInt8] {
        try engine.write(try TSRequestCodec.encode(request))
        return try engine.drainRecords()
    }

    /// A weak reference to this machine's TLS channel, once TLS started (tests).
    func tlsProbe() -> TLSEngine.Probe? { tls.map(TLSEngine.Probe.init) }

    private func requireTLS() throws -> TLSEngine {
        guard let tls else { throw CredSSPError(.invalidState, .invalidHandle, "TLS is not started") }
        return tls
    }
}
