import CredSSP
import GSS
import Logging
import MigrationVocabulary
import Synchronization
import WindowsStatus

/// How a management client signs on, and what the service gets from it: the user, a sealed
/// connection, and the credential it may act with towards the destination.
///
/// Two kinds: `KerberosSignOn` (a network logon: no reusable credentials reach the host) and
/// `CredSSPSignOn` (the user's password reaches the host, rule A1).
protocol ManagementSignOn: Sendable {
    var kind: MigrationAuthenticationType { get }
    /// Runs the sign-on after hello; on return `conn` is sealed.
    func accept(_ conn: FrameConnection, configuration: HostConfiguration) async throws(MigrationServiceError) -> SignedOnUser
}

/// The authenticated user of a management connection.
struct SignedOnUser: Sendable {
    var principal: String
    /// The credential to reach the destination with on the user's behalf (a Kerberos proxy
    /// credential for S4U2Proxy, or the user's own after a CredSSP sign-on).
    var onwardCredential: GSSCredential?
    /// The password credentials a CredSSP sign-on delivered (nil after a Kerberos sign-on).
    var signOn: SignOnCredentials?
}

/// CredSSP sign-on: CredSSP to `host/<source fqdn>` delivers the user's password; the host signs the user on with
/// it and keeps the credentials for the session (`CredSSPHandshake.server`).
struct CredSSPSignOn: ManagementSignOn {
    let identity: ServiceTLSIdentity
    var kind: MigrationAuthenticationType { .credSSP }

    func accept(_ conn: FrameConnection, configuration: HostConfiguration) async throws(MigrationServiceError) -> SignedOnUser {
        let principal = MigrationServiceNames.hostPrincipal(fqdn: configuration.fqdn, realm: configuration.realm)
        let keytab = configuration.keytab
        let credentials = try await CredSSPHandshake.server(conn, identity: identity, realm: configuration.realm) { mechanisms async throws(GSSError) in
            try await GSSCredential.acquire(name: GSSName(principal: principal), usage: .accept, mechanisms: mechanisms,
                                            from: GSSCredentialStore(keytab: keytab))
        }
        return SignedOnUser(principal: credentials.principal, onwardCredential: credentials.credential, signOn: credentials)
    }
}

/// Kerberos sign-on: the user's ticket to `host/<source fqdn>`, accepted with a credential of usage
/// *both* (keytab + client keytab + the host's ccache), which yields MIT's proxy credential when
/// the user's ticket is forwardable ("Kerberos only" constrained delegation).
struct KerberosSignOn: ManagementSignOn {
    var kind: MigrationAuthenticationType { .kerberos }

    func accept(_ conn: FrameConnection, configuration: HostConfiguration) async throws(MigrationServiceError) -> SignedOnUser {
        let principal = MigrationServiceNames.hostPrincipal(fqdn: configuration.fqdn, realm: configuration.realm)
        let store = GSSCredentialStore(ccache: "FILE:\(configuration.ccacheDirectory)/host-\(configuration.fqdn).ccache",
                                       keytab: configuration.keytab,
                                       clientKeytab: configuration.clientKeytab ?? configuration.keytab)
        let peer = try await KerberosHandshake.server(conn) { () async throws(GSSError) in
            try await GSSCredential.acquire(name: GSSName(principal: principal), usage: .both, from: store)
        }
        return SignedOnUser(principal: peer.principal, onwardCredential: peer.delegatedCredential)
    }

    /// The proxy credential a Kerberos sign-on would have given, made from the user's own
    /// credential (after a CredSSP sign-on): the user's ticket to `host/<this host>` is accepted
    /// here with the usage-both credential. Nil when MIT gives none (the ticket is not
    /// forwardable: rule A4). KDC failures read as the seed's connection error.
    static func proxyCredential(from own: GSSCredential, configuration: HostConfiguration,
                                destination: String) async throws(MigrationServiceError) -> GSSCredential? {
        let principal = MigrationServiceNames.hostPrincipal(fqdn: configuration.fqdn, realm: configuration.realm)
        let store = GSSCredentialStore(ccache: "FILE:\(configuration.ccacheDirectory)/host-\(configuration.fqdn).ccache",
                                       keytab: configuration.keytab,
                                       clientKeytab: configuration.clientKeytab ?? configuration.keytab)
        do throws(GSSError) {
            let name = try GSSName(principal: principal)
            var initiator = GSSInitiatorContext(target: name, credential: own, flags: [.mutual])
            var acceptor = GSSAcceptorContext(credential: try await GSSCredential.acquire(name: name, usage: .both, from: store))
            var token = try await initiator.step(nil).token
            while let t = token {
                let reply = try await acceptor.step(t)
                guard let r = reply.token, !initiator.isComplete else { break }
                token = try await initiator.step(r).token
            }
            return acceptor.delegatedCredential
        } catch {
            throw MigrationServiceError.connection(.authentication, error.windowsStatus, destination: destination,
                                                   detail: "acting for the signed-on user through \(principal): \(error)", gss: error)
        }
    }
}

extension ManagementService {
    /// Rule A5 on MIT: constrained delegation (S4U2Proxy with the user's proxy credential) to a
    /// service of another realm. MIT 1.20 applies `krbAllowedToDelegateTo` within one realm only;
    /// for another realm's service its client asks its own KDC, which does not hold that principal
    /// (KDC_ERR_S_PRINCIPAL_UNKNOWN; KDC_ERR_BADOPTION where a KDC refuses the request itself).
    /// Hyper-V reports a failed cross-domain delegation as 0x8009030E at the source; so does this
    /// service. Other failures pass unchanged.
    static func crossRealmDelegationFailure(_ error: MigrationServiceError, destination: String) -> MigrationServiceError {
        guard error.kind == .authentication, error.stage == .source, let gss = error.gssError,
              [WindowsStatus.targetUnknown.code, WindowsStatus.noCredentials.code].contains(gss.windowsStatus.code) else { return error }
        return .connection(.authentication, .noCredentials, destination: destination,
                           detail: "constrained delegation (S4U2Proxy) to \(destination), in another realm, was refused: "
                               + "classic constrained delegation stays in its domain (rule A5); the KDC said: \(gss.description)",
                           gss: gss)
    }

    /// The realm of a destination's SPN: this host's realm for a destination in this host's DNS
    /// domain; otherwise nil — a host-based name, which krb5.conf's `[domain_realm]` maps to the
    /// destination's realm (another domain: a trust, rules A5 and P5).
    static func destinationRealm(_ destination: String, configuration: HostConfiguration) -> String? {
        let domain = { (fqdn: String) in fqdn.lowercased().split(separator: ".", maxSplits: 1).dropFirst().first.map(String.init) }
        guard let theirs = domain(destination), let ours = domain(configuration.fqdn), theirs != ours else {
            return configuration.realm
        }
        return nil
    }
}

/// The source's management listener: a user (on a workstation) asks it to move a VM; it
/// authenticates the user, checks P1, and moves the VM with the user's onward credential
/// (S4U2Proxy to the destination's migration SPN), reporting progress and the result back.
public final class ManagementService: Sendable {
    private let state: Mutex<State>
    private let listenerSlot = ListenerSlot()
    private let logger: Logger
    /// The KDC's delegation answers kept with the host's current ticket (rule A3).
    private let hostTicket = HostTicketDelegation()

    private struct State {
        var configuration: HostConfiguration
        /// CredSSP's TLS certificate; nil: CredSSP sign-ons are not offered.
        var identity: ServiceTLSIdentity?
        /// Credentials of the CredSSP sign-ons in progress, by session number.
        var sessions: [Int: SignOnCredentials] = [:]
        var nextSession = 0
        /// Moves under way (asked for on this listener).
        var moves = 0
        /// Set by `stopAccepting`: no new move starts (the daemon is shutting down).
        var draining = false
    }

    /// The host's QEMU guests: a move of one of them is a live migration.
    public let guests: QEMUGuests?

    public init(configuration: HostConfiguration, logger: Logger = Logger(label: "ManagementService"),
                guests: QEMUGuests? = nil) {
        state = Mutex(State(configuration: configuration))
        self.logger = logger
        self.guests = guests
    }

    /// Offers CredSSP sign-ons with this TLS certificate (`HostDaemon.start` sets it).
    public func offerCredSSP(_ identity: ServiceTLSIdentity) {
        state.withLock { $0.identity = identity }
    }

    /// The users whose CredSSP sign-on sessions are open (their delivered credentials are in memory).
    public var signedOnUsers: [String] {
        state.withLock { $0.sessions.sorted { $0.key < $1.key }.map(\.value.principal) }
    }

    /// The credentials of the open CredSSP sign-ons (tests check they are wiped at the end).
    var openSignOns: [SignOnCredentials] { state.withLock { Array($0.sessions.values) } }

    private var signOns: [MigrationAuthenticationType: any ManagementSignOn] {
        var kinds: [MigrationAuthenticationType: any ManagementSignOn] = [.kerberos: KerberosSignOn()]
        if let identity = state.withLock({ $0.identity }) { kinds[.credSSP] = CredSSPSignOn(identity: identity) }
        return kinds
    }

    public var configuration: HostConfiguration { state.withLock { $0.configuration } }

    /// Applies a new configuration to the next request.
    public func update(_ configuration: HostConfiguration) {
        state.withLock { $0.configuration = configuration }
    }

    /// Listens on `endpoint` (port 0: ephemeral); returns the bound endpoint.
    @discardableResult
    public func start(on endpoint: ServiceEndpoint) async throws(MigrationServiceError) -> ServiceEndpoint {
        let listener = try await Listener.start(on: endpoint, stage: .source, handshakeTimeout: .seconds(30),
                                               limits: { [weak self] in self?.configuration.limits ?? .default }) { conn in
            await self.handle(conn)
        }
        listenerSlot.set(listener)
        return listener.endpoint
    }

    public var endpoint: ServiceEndpoint? { listenerSlot.endpoint }

    /// Shutting down, first step: closes the listening socket and refuses further move requests of open
    /// sessions (ERROR_SHUTDOWN_IN_PROGRESS); moves under way go on.
    public func stopAccepting() async {
        state.withLock { $0.draining = true }
        await listenerSlot.stopAccepting()
    }

    /// Moves under way.
    public var movesUnderWay: Int { state.withLock { $0.moves } }

    /// Waits until no move is under way, or until `deadline`; returns whether none is.
    public func waitForMoves(until deadline: ContinuousClock.Instant) async -> Bool {
        while movesUnderWay > 0 {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return true
    }

    /// Stops listening and wipes the credentials of every open sign-on. `abortingMoves`: moves still under way
    /// are cancelled (a live guest that has not been let go runs here again; one in the commit window stays
    /// paused and is reported uncertain); otherwise they finish first.
    public func stop(abortingMoves: Bool = false) async {
        await listenerSlot.stop(cancelling: abortingMoves)
        let open = state.withLock { s in
            defer { s.sessions = [:] }
            return Array(s.sessions.values)
        }
        for credentials in open { credentials.wipe() }
    }

    /// Keeps a CredSSP sign-on's credentials for the session; the returned number ends it.
    private func openSession(_ credentials: SignOnCredentials) -> Int {
        state.withLock { s in
            s.nextSession += 1
            s.sessions[s.nextSession] = credentials
            return s.nextSession
        }
    }

    /// Ends a session: its credentials are wiped ("delivered credentials live only as long as the sign-on").
    private func closeSession(_ id: Int, _ credentials: SignOnCredentials) {
        _ = state.withLock { $0.sessions.removeValue(forKey: id) }
        credentials.wipe()
    }

    private func handle(_ conn: FrameConnection) async {
        let configuration = self.configuration
        let user: SignedOnUser
        let signOns = self.signOns
        do throws(MigrationServiceError) {
            let kind = try await KerberosHandshake.serverHello(conn, purpose: .management, offered: Set(signOns.keys))
            guard let signOn = signOns[kind] else {
                throw MigrationServiceError.failure(.authentication, .packageNotFound, stage: .source,
                                                    reason: "The sign-on kind \(kind) is not offered")
            }
            user = try await signOn.accept(conn, configuration: configuration)
        } catch {
            logger.info("management sign-on failed: \(PeerText.forLog(error.detail))")
            return
        }
        let session = user.signOn.map { ($0, openSession($0)) }
        defer { if case let (credentials, id)? = session { closeSession(id, credentials) } }
        do throws(MigrationServiceError) {
            try authorize(user, configuration)
            try await conn.send(.authResult(principal: user.principal, server: configuration.fqdn))
        } catch {
            logger.info("management sign-on refused: \(PeerText.forLog("\(error)"))")
            await conn.sendError(error)
            return
        }
        // The session: move requests, one at a time, until sign-off or the connection closes.
        while true {
            let request: MoveRequestMessage
            do throws(MigrationServiceError) {
                switch try await conn.receive() {
                case .moveRequest(let r): request = r
                case .signOff: return
                default: throw MigrationServiceError.protocolViolation("expected a move request or sign-off", stage: .source)
                }
            } catch {
                if error.kind != .connectionLost { await conn.sendError(error) }
                return
            }
            do throws(MigrationServiceError) {
                let current = self.configuration  // a reload applies to the session's next move, P1 included
                try authorize(user, current)
                guard state.withLock({ s in s.draining ? false : { s.moves += 1; return true }() }) else {
                    throw MigrationServiceError.failure(.configuration, .shutdownInProgress, stage: .source,
                                                        reason: "Host \(current.name) is shutting down",
                                                        detail: "the migration service is stopping; no new move starts")
                }
                defer { state.withLock { $0.moves -= 1 } }
                let report = try await move(request, user: user, configuration: current, conn: conn)
                try await conn.send(.moveResult(report))
            } catch {
                logger.log(level: error.kind == .connectionLost ? .debug : .info, "management request failed: \(PeerText.forLog("\(error)"))")
                await conn.sendError(error)
                if error.kind == .connectionLost { return }
            }
        }
    }

    /// P1 on this host.
    private func authorize(_ user: SignedOnUser, _ configuration: HostConfiguration) throws(MigrationServiceError) {
        guard configuration.allows(user.principal) else {
            throw MigrationServiceError(kind: .authorization, status: .accessDenied, stage: .source,
                                        message: MigrationMessages.permissionDenied(user: configuration.displayName(of: user.principal),
                                                                                    host: configuration.name, stage: .source),
                                        detail: "not in the allowed users of \(configuration.name) (rule P1)")
        }
    }

    /// A1, A4, A7: the source's CredSSP needs password credentials from a sign-on on this host, of a user who may be
    /// delegated, on a host whose Credential Guard does not keep them. Otherwise 0x8009030E, before connecting.
    private func credSSPCredentials(_ user: SignedOnUser, destination: String,
                                    configuration: HostConfiguration) throws(MigrationServiceError) -> SignOnCredentials {
        let reason: String
        if let credentials = user.signOn, !credentials.isWiped {
            guard let refusal = configuration.credSSPRefusal(for: user.principal) else { return credentials }
            reason = refusal
        } else {
            reason = "\(user.principal) signed on to \(configuration.name) without CredSSP (a network logon): no credentials "
                + "to pass on; sign on to \(configuration.name) with CredSSP or at its console (rule A1)"
        }
        throw MigrationServiceError.connection(.authentication, .noCredentials, destination: destination, detail: reason)
    }

    /// How this host reaches `destination` for `user`: CredSSP with the password the sign-on delivered, or Kerberos
    /// with a credential to act on the user's behalf (rule A2) — the one a granted move got again while the host's
    /// ticket has not changed, or the refusal it got then (rule A3).
    private func authentication(for user: SignedOnUser, to destination: String,
                                configuration: HostConfiguration) async throws(MigrationServiceError) -> MigrationAuthentication {
        var authentication: MigrationAuthentication
        switch configuration.authenticationType {
        case .credSSP:
            authentication = .credSSP(try credSSPCredentials(user, destination: destination, configuration: configuration))
        case .kerberos:
            // Hyper-V's service reaches the destination for the user through constrained delegation
            // whenever this host authenticates with Kerberos (rule A2), also after a CredSSP sign-on
            // that left the user's own credential here: turn it into the proxy credential first.
            var onward = user.onwardCredential
            if user.signOn != nil, let own = onward {
                onward = try await KerberosSignOn.proxyCredential(from: own, configuration: configuration,
                                                                  destination: destination)
            }
            guard let credential = onward else {
                // Not forwardable (A4: sensitive account / Protected Users) or no delegation at all.
                throw MigrationServiceError.connection(.authentication, .noCredentials, destination: destination,
                                                       detail: "\(user.principal)'s ticket to \(configuration.fqdn) gave no credential to act on the user's behalf (not forwardable?)")
            }
            authentication = .kerberos(credential)
        }
        // Rule A3: with the host's ticket unchanged, the KDC's earlier answer for this destination stands.
        if configuration.authenticationType == .kerberos {
            let ticketEnd = await HostTicketDelegation.hostTicketEnd(configuration)
            switch hostTicket.answer(user: user.principal, destination: destination, ticketEnd: ticketEnd) {
            case .refused(let refusal)?:
                throw MigrationServiceError(kind: refusal.kind, status: refusal.status, stage: refusal.stage,
                                            message: refusal.message,
                                            detail: refusal.detail + " (the answer this host's current ticket got: a change "
                                                + "counts once the host has a new ticket — purge its ccache, restart, or "
                                                + "wait for the ticket's end; rule A3)",
                                            gssError: refusal.gssError)
            case .granted(let kept)?:
                // Still valid (the user's evidence ticket has not ended): the ticket it holds is used again.
                if let left = try? kept.inquire().lifetime, left > .zero { authentication = .kerberos(kept) }
            case nil:
                break
            }
        }
        return authentication
    }

    private func move(_ request: MoveRequestMessage, user: SignedOnUser, configuration: HostConfiguration,
                      conn: FrameConnection) async throws(MigrationServiceError) -> MigrationReport {
        if let disabled = configuration.migrationDisabledError { throw disabled }
        let authentication = try await authentication(for: user, to: request.destination, configuration: configuration)
        let host = request.endpointHost.isEmpty ? configuration.resolve(request.destination) : request.endpointHost
        guard let host else {
            throw MigrationServiceError.connection(.connection, .targetUnknown, destination: request.destination,
                                                   detail: "\(request.destination) is not in \(configuration.name)'s hosts table")
        }
        let endpoint = try ServiceEndpoint(address: host, port: request.endpointPort == 0 ? WireProtocol.defaultMigrationPort
                                                                                          : Int(request.endpointPort))
        let source = try MigrationSource(localAddress: configuration.address, vmDirectory: configuration.vmDirectory,
                                         hostName: configuration.name, guests: guests,
                                         osGeneration: configuration.osGeneration)
        let target = MigrationTarget(fqdn: request.destination, endpoint: endpoint,
                                     realm: Self.destinationRealm(request.destination, configuration: configuration))
        let (stream, continuation) = AsyncStream.makeStream(of: MigrationProgress.self, bufferingPolicy: .bufferingNewest(4))
        let options = try MoveOptions(performance: request.performance ?? configuration.performanceOption,
                                  channels: request.channels == 0 ? configuration.smbChannels : Int(request.channels),
                                  progress: { continuation.yield($0) }).restricted(to: configuration.protection)
        let vm = request.vm
        let crossRealmDelegation = target.realm == nil && configuration.authenticationType == .kerberos
        let hostTicket = self.hostTicket
        let user = user.principal
        let chosen = authentication
        let keep = configuration.authenticationType == .kerberos
        async let outcome: Result<MigrationReport, MigrationServiceError> = {
            defer { continuation.finish() }
            do throws(MigrationServiceError) {
                let report = try await source.move(vm: vm, to: target, authentication: chosen, options: options)
                if keep, case .kerberos(let credential?) = chosen {
                    // The ticket the move got is the one the KDC's answer goes with (a purged ccache gets a new one).
                    hostTicket.record(.granted(credential), user: user, destination: request.destination,
                                      ticketEnd: await HostTicketDelegation.hostTicketEnd(configuration))
                }
                return .success(report)
            } catch {
                let failure = crossRealmDelegation ? Self.crossRealmDelegationFailure(error, destination: request.destination) : error
                if keep, HostTicketDelegation.isDelegationRefusal(failure) {
                    hostTicket.record(.refused(failure), user: user, destination: request.destination,
                                      ticketEnd: await HostTicketDelegation.hostTicketEnd(configuration))
                }
                return .failure(failure)
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
