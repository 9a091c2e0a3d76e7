import GSS
import Logging
import MigrationRules
import Synchronization
import WindowsStatus

/// How a management client signs on, and what the service gets from it: the user, a sealed
/// connection, and the credential it may act with towards the destination.
///
/// Kerberos is implemented (`KerberosSignOn`); a CredSSP sign-on can be added as another
/// conformance and listed in `ManagementService`'s `signOns` without changing the service.
protocol ManagementSignOn: Sendable {
    var kind: AuthenticationKind { get }
    /// Runs the sign-on after hello; on return `conn` is sealed.
    func accept(_ conn: FrameConnection, configuration: HostConfiguration) async throws(MigrationServiceError) -> SignedOnUser
}

/// The authenticated user of a management connection.
struct SignedOnUser: Sendable {
    var principal: String
    /// The credential to reach the destination with on the user's behalf (a Kerberos proxy
    /// credential for S4U2Proxy; CredSSP would supply the user's own).
    var onwardCredential: GSSCredential?
}

/// Kerberos sign-on: the user's ticket to `host/<source fqdn>`, accepted with a credential of usage
/// *both* (keytab + client keytab + the host's ccache), which yields MIT's proxy credential when
/// the user's ticket is forwardable ("Kerberos only" constrained delegation).
struct KerberosSignOn: ManagementSignOn {
    var kind: AuthenticationKind { .kerberos }

    func accept(_ conn: FrameConnection, configuration: HostConfiguration) async throws(MigrationServiceError) -> SignedOnUser {
        let principal = MigrationServiceNames.hostPrincipal(fqdn: configuration.fqdn, realm: configuration.realm)
        let store = GSSCredentialStore(ccache: "FILE:\(configuration.ccacheDirectory)/host-\(configuration.fqdn).ccache",
                                       keytab: configuration.keytab,
                                       clientKeytab: configuration.clientKeytab ?? configuration.keytab)
        let peer = try await KerberosHandshake.server(conn) { () throws(GSSError) in
            try GSSCredential.acquire(name: GSSName(principal: principal), usage: .both, store: store)
        }
        return SignedOnUser(principal: peer.principal, onwardCredential: peer.delegatedCredential)
    }
}

/// The source's management listener: a user (on a workstation) asks it to move a VM; it
/// authenticates the user, checks P1, and moves the VM with the user's onward credential
/// (S4U2Proxy to the destination's migration SPN), reporting progress and the result back.
public final class ManagementService: Sendable {
    private let state: Mutex<State>
    private let listenerSlot = ListenerSlot()
    private let signOns: [AuthenticationKind: any ManagementSignOn]
    private let logger: Logger

    private struct State {
        var configuration: HostConfiguration
    }

    public init(configuration: HostConfiguration, logger: Logger = Logger(label: "ManagementService")) {
        state = Mutex(State(configuration: configuration))
        signOns = [.kerberos: KerberosSignOn()]
        self.logger = logger
    }

    public var configuration: HostConfiguration { state.withLock { $0.configuration } }

    /// Applies a new configuration to the next request.
    public func update(_ configuration: HostConfiguration) {
        state.withLock { $0.configuration = configuration }
    }

    /// Listens on `endpoint` (port 0: ephemeral); returns the bound endpoint.
    @discardableResult
    public func start(on endpoint: ServiceEndpoint) async throws(MigrationServiceError) -> ServiceEndpoint {
        let listener = try await Listener.start(on: endpoint, stage: .source, handshakeTimeout: .seconds(30)) { conn in
            await self.handle(conn)
        }
        listenerSlot.set(listener)
        return listener.endpoint
    }

    public var endpoint: ServiceEndpoint? { listenerSlot.endpoint }

    public func stop() async {
        await listenerSlot.stop()
    }

    private func handle(_ conn: FrameConnection) async {
        let configuration = self.configuration
        let user: SignedOnUser
        do throws(MigrationServiceError) {
            let kind = try await KerberosHandshake.serverHello(conn, purpose: .management, offered: Set(signOns.keys))
            guard let signOn = signOns[kind] else {
                throw MigrationServiceError.failure(.authentication, .packageNotFound, stage: .source,
                                                    reason: "The sign-on kind \(kind) is not offered")
            }
            user = try await signOn.accept(conn, configuration: configuration)
        } catch {
            logger.info("management sign-on failed: \(error.detail)")
            return
        }
        do throws(MigrationServiceError) {
            guard configuration.allows(user.principal) else {
                throw MigrationServiceError(kind: .authorization, status: .accessDenied, stage: .source,
                                            message: MigrationMessages.permissionDenied(user: configuration.displayName(of: user.principal),
                                                                                        host: configuration.name,
                                                                                        stage: .source),
                                            detail: "not in the allowed users of \(configuration.name) (rule P1)")
            }
            try await conn.send(.authResult(principal: user.principal, server: configuration.fqdn))
            guard case .moveRequest(let request) = try await conn.receive() else {
                throw MigrationServiceError.protocolViolation("expected a move request", stage: .source)
            }
            let report = try await move(request, user: user, configuration: configuration, conn: conn)
            try await conn.send(.moveResult(report))
        } catch {
            logger.log(level: error.kind == .connectionLost ? .debug : .info, "management request failed: \(error)")
            await conn.sendError(error)
        }
    }

    private func move(_ request: MoveRequestMessage, user: SignedOnUser, configuration: HostConfiguration,
                      conn: FrameConnection) async throws(MigrationServiceError) -> MigrationReport {
        guard configuration.migrationEnabled else {
            throw MigrationServiceError.failure(.configuration, .notSupported, stage: .source,
                                                reason: "Live migration is not enabled on host \(configuration.name)")
        }
        guard let credential = user.onwardCredential else {
            // Not forwardable (A4: sensitive account / Protected Users) or no delegation at all.
            throw MigrationServiceError.connection(.authentication, .noCredentials, destination: request.destination,
                                                   detail: "\(user.principal)'s ticket to \(configuration.fqdn) gave no credential to act on the user's behalf (not forwardable?)")
        }
        let host = request.endpointHost.isEmpty ? configuration.resolve(request.destination) : request.endpointHost
        guard let host else {
            throw MigrationServiceError.connection(.connection, .targetUnknown, destination: request.destination,
                                                   detail: "\(request.destination) is not in \(configuration.name)'s hosts table")
        }
        let endpoint = try ServiceEndpoint(address: host, port: request.endpointPort == 0 ? WireProtocol.defaultMigrationPort
                                                                                          : Int(request.endpointPort))
        let source = try MigrationSource(localAddress: configuration.address, vmDirectory: configuration.vmDirectory,
                                         hostName: configuration.name)
        let target = MigrationTarget(fqdn: request.destination, endpoint: endpoint, realm: configuration.realm)
        let (stream, continuation) = AsyncStream.makeStream(of: MigrationProgress.self, bufferingPolicy: .bufferingNewest(4))
        let options = MoveOptions(performance: request.performance ?? configuration.performanceOption,
                                  channels: request.channels == 0 ? configuration.smbChannels : Int(request.channels),
                                  progress: { continuation.yield($0) })
        let vm = request.vm
        async let outcome: Result<MigrationReport, MigrationServiceError> = {
            defer { continuation.finish() }
            do throws(MigrationServiceError) {
                return .success(try await source.move(vm: vm, to: target, credential: credential, options: options))
            } catch {
                return .failure(error)
            }
        }()
        var clientGone = false
        for await p in stream where !clientGone {
            do throws(MigrationServiceError) {
                try await conn.send(.progress(bytes: p.bytesSent, total: p.totalBytes))
            } catch {
                clientGone = true
            }
        }
        return try await outcome.get()
    }
}
