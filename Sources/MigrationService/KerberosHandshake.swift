import GSS
import WindowsStatus

/// The opening of every connection: hello / hello-ack (version and purpose; from version 2 also
/// the protection suite, `suites`), then the Kerberos token exchange with mutual authentication
/// (version 2: with the opening's transcript as channel bindings); afterwards the connection is
/// sealed with the suite chosen.
enum KerberosHandshake {
    /// Client side. Returns the principal the server authenticated (its `authResult`).
    ///
    /// Every failure reads as the seed's connection error naming `destinationName`, with the
    /// Windows status of the GSS failure (0x8009030E for missing credentials or a refused
    /// S4U2Proxy, 0x80090311 for an unreachable KDC, …), or carries the server's error.
    static func client(_ conn: FrameConnection, purpose: ConnectionPurpose, target: GSSName,
                       credential: GSSCredential?, destinationName: String) async throws(MigrationServiceError) -> String {
        do throws(MigrationServiceError) {
            try await clientHello(conn, purpose: purpose, authentication: .kerberos)
            return try await clientContext(conn, target: target, credential: credential, destinationName: destinationName)
        } catch {
            throw error.asSeenBySource(destination: destinationName)
        }
    }

    /// Client side: hello with `authentication`, the server's acknowledgement and (version 2) the
    /// suite choice; the agreement is left in `conn.negotiation`.
    static func clientHello(_ conn: FrameConnection, purpose: ConnectionPurpose,
                            authentication: MigrationAuthenticationType) async throws(MigrationServiceError) {
        let versions = conn.settings.versions
        let hello = WireMessage.hello(minVersion: versions.lowerBound, maxVersion: versions.upperBound,
                                      purpose: purpose, authentication: authentication)
        try await conn.sendClear(hello)
        let ack = try await conn.receive()
        switch ack {
        case .helloAck(let version, let auth) where version == 1 && versions.contains(1) && auth == authentication:
            conn.negotiation = .version1
        case .helloAckV2(let version, let auth, let serverSuites, let serverNonce)
            where version >= 2 && versions.contains(version) && auth == authentication:
            let mine = conn.settings.suites.map(\.rawValue)
            guard let chosen = ProtocolSettings.choose(client: mine, server: serverSuites),
                  let suite = ProtectionSuite(rawValue: chosen) else {
                throw MigrationServiceError.failure(.authentication, .algorithmMismatch, stage: .source,
                                                    reason: "The hosts have no protection suite in common",
                                                    detail: "this end offers \(mine), the server \(serverSuites)")
            }
            let offer = SuiteOffer(chosen: chosen, offered: mine, nonce: randomNonce(), migrationID: conn.binding.migrationID,
                                   channel: conn.binding.channel)
            try await conn.sendClear(.suites(offer))
            _ = serverNonce
            conn.negotiation = SuiteNegotiation(version: version, suite: suite, binding: conn.binding,
                                                transcript: SuiteNegotiation.transcript(of: [hello, ack, .suites(offer)]))
        default:
            throw MigrationServiceError.protocolViolation("the server did not acknowledge hello with a version in \(versions) / \(authentication)",
                                                          stage: .source)
        }
    }

    /// 16 fresh random bytes (the opening's nonces).
    static func randomNonce() -> [UInt8] {
        var g = SystemRandomNumberGenerator()
        return (0..<16).map { _ in UInt8.random(in: 0...255, using: &g) }
    }

    /// Seals `conn` with the established `context` and the negotiated suite.
    static func seal<Context: GSSSecurityContext & ~Copyable>(_ conn: FrameConnection, with context: consuming Context,
                                                            isClient: Bool) throws(MigrationServiceError) {
        let negotiation = conn.negotiation ?? .version1
        let protection = ContextProtection(context)
        switch negotiation.suite {
        case .gssWrap:
            conn.protection = protection
        case .aes256GCM:
            do {
                conn.aead = try AEADStreamProtection(context: protection, negotiation: negotiation, isClient: isClient,
                                                     rekeyInterval: conn.settings.rekeyInterval)
            } catch {
                throw MigrationServiceError.failure(.authentication, error.windowsStatus, stage: conn.stage,
                                                    reason: "The connection's keys could not be derived",
                                                    detail: error.description, gss: error.gssError)
            }
        }
    }

    /// Client side, after hello: the Kerberos context that seals the connection, then the server's `authResult`.
    static func clientContext(_ conn: FrameConnection, target: GSSName, credential: GSSCredential?,
                              destinationName: String) async throws(MigrationServiceError) -> String {
        do throws(MigrationServiceError) {
            var context = GSSInitiatorContext(target: target, credential: credential, flags: .standard,
                                              channelBindings: conn.negotiation?.channelBindings)
            var input: [UInt8]? = nil
            while true {
                let step: GSSStep
                do {
                    step = try await context.step(input)
                } catch {
                    throw MigrationServiceError.connection(.authentication, error.windowsStatus,
                                                           destination: destinationName,
                                                           detail: error.description, gss: error)
                }
                if let token = step.token { try await conn.sendClear(.token(token)) }
                if step.isComplete { break }
                guard case .token(let reply) = try await conn.receive() else {
                    throw MigrationServiceError.protocolViolation("expected a GSS token", stage: .source)
                }
                input = reply
            }
            let required: GSSContextFlags = [.mutual, .confidentiality, .integrity]
            guard context.grantedFlags.isSuperset(of: required) else {
                throw MigrationServiceError.connection(.authentication, .securityQoSFailed, destination: destinationName,
                                                       detail: "granted flags \(context.grantedFlags), need \(required)")
            }
            try seal(conn, with: context, isClient: true)
            guard case .authResult(let principal, _) = try await conn.receive() else {
                throw MigrationServiceError.protocolViolation("expected the authorization result", stage: .source)
            }
            return principal
        } catch {
            throw error.asSeenBySource(destination: destinationName)
        }
    }

    /// What the server learned: the authenticated user and any credential it delegated.
    struct Peer {
        var principal: String
        var delegatedCredential: GSSCredential?
    }

    /// Server side: the hello exchange. Refuses other versions or purposes, and sign-on kinds not
    /// in `offered`; returns the kind the client chose. Failures are sent to the client.
    static func serverHello(_ conn: FrameConnection, purpose: ConnectionPurpose,
                            offered: Set<MigrationAuthenticationType> = [.kerberos]) async throws(MigrationServiceError) -> MigrationAuthenticationType {
        try await serverHello(conn, purposes: [purpose: offered]).0
    }

    /// Server side, for a port that serves several purposes (a destination's migration port: migrations, and
    /// outcome queries of protocol version 3), each with the sign-on kinds it offers; returns the kind and the
    /// purpose the client chose. A purpose-3 hello must include version 3 (``WireProtocol/outcomeVersion``),
    /// and gets exactly that version; the others are negotiated within `conn.settings.versions`.
    static func serverHello(_ conn: FrameConnection, purposes: [ConnectionPurpose: Set<MigrationAuthenticationType>])
        async throws(MigrationServiceError) -> (MigrationAuthenticationType, ConnectionPurpose) {
        do throws(MigrationServiceError) {
            let stage = conn.stage
            guard case .hello(let minV, let maxV, let p, let auth) = try await conn.receive() else {
                throw MigrationServiceError.protocolViolation("the first message must be hello", stage: stage)
            }
            let mine = p == .outcome ? WireProtocol.outcomeVersion...WireProtocol.outcomeVersion : conn.settings.versions
            let version = min(maxV, mine.upperBound)
            guard minV <= maxV, version >= max(minV, mine.lowerBound) else {
                throw MigrationServiceError.failure(.protocolViolation, .revisionMismatch, stage: stage,
                                                    reason: "The migration protocol versions are incompatible",
                                                    detail: "client speaks \(minV)…\(maxV), server speaks \(mine.lowerBound)…\(mine.upperBound)")
            }
            guard let offered = purposes[p] else {
                // Named by its main purpose (a migration port answers outcome queries too).
                let served = purposes.keys.min { $0.rawValue < $1.rawValue }.map { "\($0)" } ?? "nothing"
                throw MigrationServiceError.protocolViolation("this port serves \(served), not \(p)", stage: stage)
            }
            guard offered.contains(auth) else {
                throw MigrationServiceError.failure(.authentication, .packageNotFound, stage: stage,
                                                    reason: "The sign-on kind \(auth) is not offered on this port")
            }
            if version == 1 {
                try await conn.sendClear(.helloAck(version: 1, authentication: auth))
                conn.negotiation = .version1
                return (auth, p)
            }
            let serverSuites = conn.settings.suites.map(\.rawValue)
            let ack = WireMessage.helloAckV2(version: version, authentication: auth, suites: serverSuites, nonce: randomNonce())
            try await conn.sendClear(ack)
            guard case .suites(let offer) = try await conn.receive() else {
                throw MigrationServiceError.protocolViolation("expected the suite choice", stage: stage)
            }
            guard offer.nonce.count == 16, let suite = ProtectionSuite(rawValue: offer.chosen), serverSuites.contains(offer.chosen) else {
                throw MigrationServiceError.failure(.authentication, .algorithmMismatch, stage: stage,
                                                    reason: "The hosts have no protection suite in common",
                                                    detail: "the client chose \(offer.chosen) of \(offer.offered), this end offers \(serverSuites)")
            }
            // The client must take the first of its own suites that this end offers: anything else
            // is a downgrade (the lists themselves are bound by the transcript in the channel bindings).
            guard ProtocolSettings.choose(client: offer.offered, server: serverSuites) == offer.chosen else {
                throw MigrationServiceError.failure(.authentication, .downgradeDetected, stage: stage,
                                                    reason: "The protection suite negotiation was tampered with",
                                                    detail: "the client chose \(offer.chosen) although it offers \(offer.offered) and this end \(serverSuites)")
            }
            conn.negotiation = SuiteNegotiation(version: version, suite: suite,
                                                binding: ConnectionBinding(migrationID: offer.migrationID, channel: offer.channel),
                                                transcript: SuiteNegotiation.transcript(of: [.hello(minVersion: minV, maxVersion: maxV, purpose: p, authentication: auth), ack, .suites(offer)]))
            return (auth, p)
        } catch {
            await conn.sendError(error)
            throw error
        }
    }

    /// Server side, after hello: accepts the Kerberos context with `credential` and seals the
    /// connection. The caller authorizes and then sends `authResult`. Failures are sent to the
    /// client before they are thrown.
    static func server(_ conn: FrameConnection,
                       credential: @Sendable () async throws(GSSError) -> GSSCredential) async throws(MigrationServiceError) -> Peer {
        do throws(MigrationServiceError) {
            return try await serverSteps(conn, credential: credential)
        } catch {
            await conn.sendError(error)
            throw error
        }
    }

    private static func serverSteps(_ conn: FrameConnection,
                                    credential: @Sendable () async throws(GSSError) -> GSSCredential) async throws(MigrationServiceError) -> Peer {
        let stage = conn.stage
        let acceptorCredential: GSSCredential
        do {
            acceptorCredential = try await credential()
        } catch {
            throw MigrationServiceError.failure(.authentication, error.windowsStatus, stage: stage,
                                                reason: "The service has no usable keys", detail: error.description, gss: error)
        }
        var context = GSSAcceptorContext(credential: acceptorCredential, channelBindings: conn.negotiation?.channelBindings)
        while true {
            guard case .token(let token) = try await conn.receive() else {
                throw MigrationServiceError.protocolViolation("expected a GSS token", stage: stage)
            }
            let step: GSSStep
            do {
                step = try await context.step(token)
            } catch {
                if let reply = error.peerToken { try? await conn.sendClear(.token(reply)) }
                throw MigrationServiceError.failure(.authentication, error.windowsStatus, stage: stage,
                                                    reason: "Kerberos authentication of the client failed",
                                                    detail: error.description, gss: error)
            }
            if let reply = step.token { try await conn.sendClear(.token(reply)) }
            if step.isComplete { break }
        }
        guard let name = context.peerName?.description else {
            throw MigrationServiceError.failure(.authentication, .internalError, stage: stage,
                                                reason: "The client's name is unknown")
        }
        let peer = Peer(principal: name, delegatedCredential: context.delegatedCredential)
        try seal(conn, with: context, isClient: false)
        return peer
    }
}

extension MigrationServiceError {
    /// An error the destination reported, as the source shows it: authentication and connection
    /// failures become the seed's connection message naming the destination as the user knows it.
    func asSeenBySource(destination: String) -> MigrationServiceError {
        guard kind == .authentication || kind == .connection else { return self }
        var e = MigrationServiceError.connection(kind, status, destination: destination, detail: detail, gss: gssError)
        if stage == .destination, gssError == nil {
            e.detail = detail.isEmpty ? "reported by the destination" : "reported by the destination: \(detail)"
        }
        return e
    }
}
