import NIOSSL
import WindowsStatus

/// What a CredSSP state machine wants done after a step.
public enum CredSSPClientStep: Sendable, Equatable {
    /// Send these bytes (possibly empty) and call ``CredSSPClient/step(_:)`` with the peer's answer.
    case send([UInt8])
    /// Send these bytes (the encrypted credentials); the exchange is over and the peer answers no more.
    case finished([UInt8])
}

/// The CredSSP initiator ([MS-CSSP] versions 2–6) as a sans-IO state machine: bytes in, bytes out.
///
/// Any transport carries the tokens (length-prefixed TCP frames, HTTP, RDP). The client runs TLS, then the inner
/// authentication, binds it to the server's public key through `pubKeyAuth`, and finally sends the credentials.
/// The actor runs on a thread of its own (TLS and the possibly blocking inner steps run there, never on an event
/// loop); ``run(frames:send:)`` drives a whole exchange over a framed transport.
public actor CredSSPClient {
    private enum State {
        case initial, handshake, awaitingTLSReply, negotiating, awaitingPubKeyAuth, finished, failed
    }

    private let credentials: CredSSPCredentials
    private let inner: any CredSSPInnerAuthenticator
    private let policy: CredSSPPolicy
    private let verification: CredSSPServerVerification
    private let session = SessionTLS()
    private var tls: TLSEngine? {
        get { session.engine }
        set { session.engine = newValue }
    }
    /// This actor's thread, one of a small shared set: TLS and the inner authentication (which may block on a KDC)
    /// run there.
    private let thread: CredSSPSessionThread
    public nonisolated var unownedExecutor: UnownedSerialExecutor { thread.asUnownedSerialExecutor() }
    private var state: State = .initial
    private var serverKey: CertificatePublicKey?
    private var nonce: [UInt8]?
    /// The protocol version both sides use (the smaller of the two announced).
    public private(set) var negotiatedVersion: Int?
    /// The TLS version of the channel, once established.
    public private(set) var tlsVersion: TLSVersion?
    /// The version the server announced in its first TSRequest.
    public private(set) var serverVersion: Int?
    /// On a byte stream (RDP) a TSRequest may arrive in pieces, and nobody answers a TLS 1.3 Finished.
    private var streaming = false
    private var pending: [UInt8] = []

    /// - Parameters:
    ///   - credentials: what to delegate; wiped once sent (or on failure).
    ///   - inner: the initiator side of the inner authentication.
    ///   - verification: how to check the server certificate.
    public init(credentials: CredSSPCredentials, inner: sending any CredSSPInnerAuthenticator,
                verification: CredSSPServerVerification, policy: CredSSPPolicy = CredSSPPolicy()) throws {
        try policy.validate()
        self.credentials = credentials
        self.inner = inner
        self.policy = policy
        self.verification = verification
        self.thread = try CredSSPSessionThread.assign()
    }

    /// The session thread closes the TLS engine (bound to it), also when the exchange was abandoned half-way (a
    /// peer that went away, a timeout). Not an `isolated deinit`: with one, Swift 6.3's optimizer hits a cycle
    /// (ActorIsolationRequest on this deinit) in release builds of modules that use this type.
    deinit { thread.end(session) }

    /// Advances the exchange. Call first with `nil`, then with each token the server sends.
    public func step(_ input: [UInt8]?) async throws(CredSSPError) -> CredSSPClientStep {
        do {
            return try advance(input)
        } catch {
            let failure = (error as? CredSSPError) ?? CredSSPError(.innerAuthenticationFailed,
                                                                    inner.windowsStatus(for: error), "\(error)")
            state = .failed
            credentials.wipe()
            inner.dispose()
            tls?.close()
            throw failure
        }
    }

    private func advance(_ input: [UInt8]?) throws -> CredSSPClientStep {
        switch state {
        case .initial:
            guard input == nil else { throw CredSSPError.unexpected("The first client step takes no input") }
            let engine: TLSEngine
            if case .certificateAuthorities = verification {
                engine = try TLSEngine.client(configuration: try tlsConfiguration(), serverHostname: hostname)
            } else {
                engine = try TLSEngine.client(context: try TLSContexts.unverifiedClient(
                    minimum: policy.minimumTLSVersion, maximum: policy.maximumTLSVersion), serverHostname: hostname)
            }
            tls = engine
            state = .handshake
            return .send(try engine.drainRecords())
        case .handshake:
            let engine = try requireTLS()
            try engine.feed(try require(input))
            let records = try engine.drainRecords()
            guard engine.handshakeComplete else { return .send(records) }
            try tlsEstablished(engine)
            if !records.isEmpty {
                // TLS 1.3, framed: the Finished goes alone and the server answers it, so turns alternate strictly.
                // On a byte stream the first TSRequest follows the Finished at once.
                if streaming { return .send(records + (try firstRequest(engine))) }
                state = .awaitingTLSReply
                return .send(records)
            }
            return .send(try firstRequest(engine))
        case .awaitingTLSReply:
            let engine = try requireTLS()
            try engine.feed(try require(input))
            return .send(try firstRequest(engine))
        case .negotiating:
            let engine = try requireTLS()
            guard let reply = try receive(engine, try require(input)) else { return .send([]) }
            if serverVersion == nil { serverVersion = reply.version }
            try checkVersion(reply.version)
            guard let token = reply.negoTokens?.tokens.first else {
                throw CredSSPError.unexpected("The server's TSRequest has no negoTokens")
            }
            let out = try inner.step(token)
            return .send(try nextRequest(engine, token: out))
        case .awaitingPubKeyAuth:
            let engine = try requireTLS()
            guard let reply = try receive(engine, try require(input)) else { return .send([]) }
            if serverVersion == nil { serverVersion = reply.version }
            if let token = reply.negoTokens?.tokens.first, !token.isEmpty {
                _ = try inner.step(token)  // e.g. SPNEGO's mechListMIC
            }
            guard let sealed = reply.pubKeyAuth else {
                throw CredSSPError.unexpected("The server's answer has no pubKeyAuth")
            }
            try verifyServerBinding(sealed)
            var wire = TSCredentials(credType: TSCredentials.passwordCredType,
                                     credentials: try TSRequestCodec.encode(credentials.wire))
            defer { wire.wipe() }
            var plain = try TSRequestCodec.encode(wire)
            defer { plain.wipe() }
            let authInfo = try inner.wrap(plain)
            credentials.wipe()
            state = .finished
            let last = try send(engine, TSRequest(version: policy.version, authInfo: authInfo))
            engine.close()
            inner.dispose()
            return .finished(last)
        case .finished, .failed:
            throw CredSSPError(.invalidState, .invalidHandle, "The CredSSP client has already \(state == .finished ? "finished" : "failed")")
        }
    }

    private var hostname: String? {
        if case .certificateAuthorities(_, let host) = verification { return host }
        return nil
    }

    private func tlsConfiguration() throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = policy.minimumTLSVersion
        configuration.maximumTLSVersion = policy.maximumTLSVersion
        switch verification {
        case .certificateAuthorities(let file, _):
            configuration.certificateVerification = .fullVerification
            configuration.trustRoots = .file(file)
        case .pinnedPublicKeySHA256, .insecureAcceptAny:
            configuration.certificateVerification = .none
        }
        return configuration
    }

    private func tlsEstablished(_ engine: TLSEngine) throws {
        tlsVersion = try engine.tlsVersion()
        guard let der = try engine.peerCertificateDER() else {
            throw CredSSPError(.serverCertificateRejected, .untrustedRoot, "The server sent no certificate")
        }
        let key = try CertificatePublicKey(certificateDER: der)
        if case .pinnedPublicKeySHA256(let pin) = verification, key.sha256 != pin {
            throw CredSSPError(.serverCertificateRejected, .untrustedRoot,
                               "The server's public key does not match the pinned SHA-256")
        }
        serverKey = key
    }

    private func firstRequest(_ engine: TLSEngine) throws -> [UInt8] {
        let out = try inner.step(nil)
        return try nextRequest(engine, token: out)
    }

    /// Makes the machine accept TSRequests split over several inputs (a byte stream such as RDP's) and send its
    /// first TSRequest right after a TLS 1.3 Finished.
    func useByteStream() { streaming = true }

    /// The next TSRequest: more negotiation, or (once the inner context is complete) the public-key binding.
    private func nextRequest(_ engine: TLSEngine, token: [UInt8]?) throws -> [UInt8] {
        guard inner.isComplete else {
            state = .negotiating
            return try send(engine, TSRequest(version: policy.version, negoTokens: NegoData(tokens: [token ?? []])))
        }
        let version = negotiatedVersion ?? policy.version
        negotiatedVersion = version
        guard let key = serverKey?.subjectPublicKey else { throw CredSSPError.unexpected("No server key") }
        if version >= 5 { nonce = SecureRandom.bytes(32) }
        let binding = PublicKeyBinding.client(version: version, nonce: nonce, subjectPublicKey: key)
        let request = TSRequest(version: policy.version, negoTokens: token.map { NegoData(tokens: [$0]) },
                                pubKeyAuth: try inner.wrap(binding), clientNonce: nonce)
        state = .awaitingPubKeyAuth
        return try send(engine, request)
    }

    private func checkVersion(_ serverVersion: Int) throws {
        let version = min(serverVersion, policy.version)
        guard version >= policy.minimumVersion else {
            throw CredSSPError(.versionRefused, .unsupportedFunction,
                               "The server speaks CredSSP version \(serverVersion), below the minimum \(policy.minimumVersion)")
        }
        negotiatedVersion = version
    }

    private func verifyServerBinding(_ sealed: [UInt8]) throws {
        guard let key = serverKey?.subjectPublicKey, let version = negotiatedVersion else {
            throw CredSSPError.unexpected("No server key")
        }
        let expected = PublicKeyBinding.server(version: version, nonce: nonce, subjectPublicKey: key)
        try PublicKeyBinding.verify(sealed, expected: expected, inner: inner, peer: "server's",
                                    mismatch: "The server's pubKeyAuth does not match its TLS public key: possible man in the middle")
    }

    private func send(_ engine: TLSEngine, _ request: TSRequest) throws -> [UInt8] {
        try engine.write(try TSRequestCodec.encode(request))
        return try engine.drainRecords()
    }

    /// The server's next TSRequest; nil when, on a byte stream, it has not arrived whole yet.
    private func receive(_ engine: TLSEngine, _ records: [UInt8]) throws -> TSRequest? {
        guard records.count <= policy.maximumMessageBytes + 4096 else {
            throw CredSSPError.tooLarge("TLS token", records.count, limit: policy.maximumMessageBytes)
        }
        try engine.feed(records)
        let plaintext = try engine.readPlaintext()
        let request: TSRequest
        if streaming {
            pending += plaintext
            guard let length = try TSRequestCodec.wholeElementLength(pending, policy: policy) else { return nil }
            guard length == pending.count else {
                throw CredSSPError.unexpected("The server sent \(pending.count - length) bytes after its TSRequest")
            }
            defer { pending = [] }
            request = try TSRequestCodec.decodeRequest(pending, policy: policy)
        } else {
            request = try TSRequestCodec.decodeRequest(plaintext, policy: policy)
        }
        if let code = request.errorCode, code != 0 { throw CredSSPError.peer(code) }
        return request
    }

    /// A weak reference to this machine's TLS channel, once TLS started (tests).
    func tlsProbe() -> TLSEngine.Probe? { tls.map(TLSEngine.Probe.init) }

    private func requireTLS() throws -> TLSEngine {
        guard let tls else { throw CredSSPError(.invalidState, .invalidHandle, "TLS is not started") }
        return tls
    }

    private func require(_ input: [UInt8]?) throws -> [UInt8] {
        guard let input else { throw CredSSPError.unexpected("A server token is required at this step") }
        return input
    }
}
