import CredSSP
import GSS
import WindowsStatus

/// The CredSSP opening of a connection (`hello` with authentication CredSSP): the CredSSP exchange in `credSSP`
/// frames (TLS, SPNEGO/Kerberos to the server's SPN, `pubKeyAuth`, the user's TSPasswordCreds; version ≥ 6), the
/// server's check of the delivered password with the KDC, then the Kerberos context of the same user that seals
/// the connection (as after a Kerberos hello). See docs/wire-protocol.md.
enum CredSSPHandshake {
    /// Client side. Returns the principal the server authenticated (its `authResult`); failures read as the seed's
    /// connection error naming `destinationName`.
    static func client(_ conn: FrameConnection, purpose: ConnectionPurpose, target: GSSName, signOn: SignOnCredentials,
                       destinationName: String) async throws(MigrationServiceError) -> String {
        do throws(MigrationServiceError) {
            try await KerberosHandshake.clientHello(conn, purpose: purpose, authentication: .credSSP)
            let frames = CredSSPFrames(conn: conn)
            do {
                let client = try CredSSPClient(credentials: signOn.delivery(),
                                               inner: GSSInitiatorAuthenticator(target: target, credential: signOn.spnegoCredential),
                                               verification: .insecureAcceptAny)
                try await client.run(frames: frames) { bytes in try await conn.sendClear(.credSSP(bytes)) }
            } catch {
                if let serverError = frames.failure { throw serverError }
                let failure = error as? CredSSPError
                throw MigrationServiceError.connection(.authentication, failure?.status ?? .logonDenied,
                                                       destination: destinationName, detail: "\(error)")
            }
            return try await KerberosHandshake.clientContext(conn, target: target, credential: signOn.credential,
                                                             destinationName: destinationName)
        } catch {
            throw error.asSeenBySource(destination: destinationName)
        }
    }

    /// Server side, after hello: runs CredSSP with the service's keys and `identity`, signs the delivered user on
    /// with the KDC (a wrong password: SEC_E_LOGON_DENIED), and accepts the sealing Kerberos context, which must be
    /// the same user's. The caller authorizes and sends `authResult`. Failures are sent to the client first.
    /// `credential` gives the service's acceptor credential for the mechanisms asked; it is called once, for SPNEGO
    /// (inside CredSSP) and Kerberos (the sealing context) together.
    static func server(_ conn: FrameConnection, identity: ServiceTLSIdentity, realm: String,
                       credential: @escaping @Sendable ([GSSMechanism]) async throws(GSSError) -> GSSCredential) async throws(MigrationServiceError) -> SignOnCredentials {
        let stage = conn.stage
        let delivered: CredSSPCredentials
        let acceptor: GSSCredential
        do throws(MigrationServiceError) {
            do {
                // One acceptor credential (one keytab read) for both: SPNEGO inside CredSSP, Kerberos for the
                // sealing context.
                acceptor = try await credential([.spnego, .kerberos])
            } catch {
                throw MigrationServiceError.failure(.authentication, error.windowsStatus, stage: stage,
                                                    reason: "The service has no usable keys", detail: error.description, gss: error)
            }
            do {
                let server = try CredSSPServer(certificateChain: identity.certificateChain, privateKey: identity.privateKey,
                                               inner: GSSAcceptorAuthenticator(credential: acceptor))
                delivered = try await server.run(frames: CredSSPFrames(conn: conn)) { bytes in
                    try await conn.sendClear(.credSSP(bytes))
                }
            } catch {
                let failure = error as? CredSSPError
                throw MigrationServiceError.failure(.authentication, failure?.status ?? .logonDenied, stage: stage,
                                                    reason: "CredSSP authentication of the client failed", detail: "\(error)")
            }
        } catch {
            await conn.sendError(error)
            throw error
        }
        defer { delivered.wipe() }
        let principal = SignOnCredentials.qualified(delivered.user, domain: delivered.domain, realm: realm)
        let user: SignOnCredentials
        do throws(MigrationServiceError) {
            do {
                user = try await SignOnCredentials.signOn(user: principal, realm: realm, password: delivered.password,
                                                          destination: "")
            } catch {
                throw MigrationServiceError.failure(.authentication, error.status, stage: stage,
                                                    reason: "The credentials delivered for \(principal) were refused",
                                                    detail: error.detail, gss: error.gssError)
            }
        } catch {
            await conn.sendError(error)
            throw error
        }
        let peer = try await KerberosHandshake.server(conn) { () throws(GSSError) in acceptor }
        guard peer.principal == principal else {
            user.wipe()
            let error = MigrationServiceError.failure(.authentication, .logonDenied, stage: stage,
                                                      reason: "The Kerberos sign-on does not match the delivered credentials",
                                                      detail: "Kerberos: \(peer.principal), CredSSP: \(principal)")
            await conn.sendError(error)
            throw error
        }
        return user
    }
}

/// The `credSSP` frames of a connection as the CredSSP module's transport wants them: one token per element. An
/// error frame from the peer (or any other failure) ends the sequence and is kept in ``failure``.
final class CredSSPFrames: AsyncSequence {
    typealias Element = [UInt8]
    private let conn: FrameConnection
    /// What ended the sequence early.
    private(set) var failure: MigrationServiceError?

    init(conn: FrameConnection) { self.conn = conn }

    struct AsyncIterator: AsyncIteratorProtocol {
        let frames: CredSSPFrames

        mutating func next() async throws -> [UInt8]? {
            do throws(MigrationServiceError) {
                guard case .credSSP(let token) = try await frames.conn.receive() else {
                    throw MigrationServiceError.protocolViolation("expected a CredSSP token", stage: frames.conn.stage)
                }
                return token
            } catch {
                frames.failure = error
                throw error
            }
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(frames: self) }
}
