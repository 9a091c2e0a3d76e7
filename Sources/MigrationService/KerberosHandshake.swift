import GSS
import WindowsStatus

/// The opening of every connection: hello / hello-ack (version and purpose), then the Kerberos
/// token exchange with mutual authentication; afterwards the connection is sealed.
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

    /// Client side: hello with `authentication`, and the server's acknowledgement.
    static func clientHello(_ conn: FrameConnection, purpose: ConnectionPurpose,
                            authentication: AuthenticationKind) async throws(MigrationServiceError) {
        try await conn.sendClear(.hello(minVersion: WireProtocol.minimumVersion, maxVersion: WireProtocol.version,
                                        purpose: purpose, authentication: authentication))
        guard case .helloAck(let version, let auth) = try await conn.receive(),
              (WireProtocol.minimumVersion...WireProtocol.version).contains(version), auth == authentication else {
            throw MigrationServiceError.protocolViolation(
                "the server did not acknowledge hello with a version in \(WireProtocol.minimumVersion)…\(WireProtocol.version) / \(authentication)",
                stage: .source)
        }
        conn.version = version
    }

    /// Client side, after hello: the Kerberos context that seals the connection, then the server's `authResult`.
    static func clientContext(_ conn: FrameConnection, target: GSSName, credential: GSSCredential?,
                              destinationName: String) async throws(MigrationServiceError) -> String {
        do throws(MigrationServiceError) {
            var context = GSSInitiatorContext(target: target, credential: credential, flags: .standard)
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
            conn.protection = InitiatorProtection(context)
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
                            offered: Set<AuthenticationKind> = [.kerberos]) async throws(MigrationServiceError) -> AuthenticationKind {
        do throws(MigrationServiceError) {
            let stage = conn.stage
            guard case .hello(let minV, let maxV, let p, let auth) = try await conn.receive() else {
                throw MigrationServiceError.protocolViolation("the first message must be hello", stage: stage)
            }
            // The newest version both speak.
            let chosen = min(maxV, WireProtocol.version)
            guard minV <= maxV, minV <= chosen, chosen >= WireProtocol.minimumVersion else {
                throw MigrationServiceError.failure(.protocolViolation, .revisionMismatch, stage: stage,
                                                    reason: "The migration protocol versions are incompatible",
                                                    detail: "client speaks \(minV)…\(maxV), server speaks \(WireProtocol.minimumVersion)…\(WireProtocol.version)")
            }
            guard p == purpose else {
                throw MigrationServiceError.protocolViolation("this port serves \(purpose), not \(p)", stage: stage)
            }
            guard offered.contains(auth) else {
                throw MigrationServiceError.failure(.authentication, .packageNotFound, stage: stage,
                                                    reason: "The sign-on kind \(auth) is not offered on this port")
            }
            try await conn.sendClear(.helloAck(version: chosen, authentication: auth))
            conn.version = chosen
            return auth
        } catch {
            await conn.sendError(error)
            throw error
        }
    }

    /// Server side, after hello: accepts the Kerberos context with `credential` and seals the
    /// connection. The caller authorizes and then sends `authResult`. Failures are sent to the
    /// client before they are thrown.
    static func server(_ conn: FrameConnection,
                       credential: @Sendable () throws(GSSError) -> GSSCredential) async throws(MigrationServiceError) -> Peer {
        do throws(MigrationServiceError) {
            return try await serverSteps(conn, credential: credential)
        } catch {
            await conn.sendError(error)
            throw error
        }
    }

    private static func serverSteps(_ conn: FrameConnection,
                                    credential: @Sendable () throws(GSSError) -> GSSCredential) async throws(MigrationServiceError) -> Peer {
        let stage = conn.stage
        let acceptorCredential: GSSCredential
        do {
            acceptorCredential = try credential()
        } catch {
            throw MigrationServiceError.failure(.authentication, error.windowsStatus, stage: stage,
                                                reason: "The service has no usable keys", detail: error.description, gss: error)
        }
        var context = GSSAcceptorContext(credential: acceptorCredential)
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
        conn.protection = AcceptorProtection(context)
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
