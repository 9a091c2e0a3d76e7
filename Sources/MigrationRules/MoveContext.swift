import Directory
import Hosts
import WindowsStatus

/// Everything the rules need about one move, resolved once.
struct MoveContext {
    /// The world's directory and clock (not the whole world: cheaper to hold).
    let directory: Directory
    let now: SimTime
    let move: MoveRequest
    let source: SimulatedHost
    let destination: SimulatedHost
    let user: PrincipalRef
    /// The host the command runs on.
    let origin: SimulatedHost
    /// The user's session on `origin` that runs it.
    let session: SignOn
    /// The source's domain as its logon DC holds it.
    let sourceReplica: DirectoryReplica?
    /// The destination's domain as its logon DC holds it.
    let destinationReplica: DirectoryReplica?

    var authentication: MigrationAuthenticationType { source.migration.authenticationType }
    /// Started in a session on the source itself.
    var startedAtSource: Bool { origin.key == source.key }
    /// Reaches the source through remote management (another machine, or a remote shell on it): rule A2b.
    var remotelyManaged: Bool { !startedAtSource || session.kind.isRemoteShell }
    /// The destination as the user typed it.
    var destinationName: String { move.destination }

    /// `CONTOSO\alice`.
    var userDisplay: String {
        let nb = directory.domains[user.domain]?.domain.netBIOSName ?? user.domain
        let name = directory.user(user)?.samAccountName ?? user.name
        return "\(nb)\\\(name)"
    }

    init(world: World, move: MoveRequest) throws(SimulationError) {
        let keys = move.keys
        guard let s = world.hosts[keys.source] else { throw SimulationError.unknownHost(move.source) }
        guard let d = world.hosts[keys.destination] else { throw SimulationError.unknownHost(move.destination) }
        guard let o = keys.origin == keys.source ? s : world.hosts[keys.origin] else {
            throw SimulationError.unknownHost(move.startedFrom ?? move.source)
        }
        let dir = world.directory
        let originReplica = dir.replica(of: o.domain, on: o.logonDC)
        let u: PrincipalRef
        // Quick path: a bare name of the origin's domain.
        if let key = keys.bareUser, originReplica?.users[key] != nil {
            u = PrincipalRef(normalizedDomain: o.domain, name: key)
        } else {
            guard let r = dir.resolve(move.user, defaultDomain: o.domain), dir.user(r) != nil else {
                throw SimulationError.unknownPrincipal(move.user)
            }
            u = r
        }
        var chosen: SignOn? = nil
        var best = Int.max
        for s in o.signOns where s.user == u {
            if let kind = move.session {
                if s.kind == kind { chosen = s; break }
                continue
            }
            // Preference: console, Remote Desktop, CredSSP shell, Kerberos shell.
            let rank: Int
            switch s.kind {
            case .console: rank = 0
            case .remoteDesktop: rank = 1
            case .remoteShellCredSSP: rank = 2
            case .remoteShellKerberos: rank = 3
            }
            if rank < best { best = rank; chosen = s }
        }
        guard let chosen else {
            let how = move.session.map { " by \($0.rawValue)" } ?? ""
            throw SimulationError(status: .logonDenied,
                                  message: "\(move.user) is not signed on to \(o.name)\(how); sign on there first or say where the move is started from")
        }
        self.directory = dir
        self.now = world.now
        self.move = move
        self.source = s
        self.destination = d
        self.user = u
        self.origin = o
        self.session = chosen
        // One replica per (domain, logon DC): hosts sharing both share it.
        let sr = (s.domain == o.domain && s.logonDC == o.logonDC) ? originReplica : dir.replica(of: s.domain, on: s.logonDC)
        self.sourceReplica = sr
        if d.domain == o.domain && d.logonDC == o.logonDC {
            self.destinationReplica = originReplica
        } else if d.domain == s.domain && d.logonDC == s.logonDC {
            self.destinationReplica = sr
        } else {
            self.destinationReplica = dir.replica(of: d.domain, on: d.logonDC)
        }
    }

    // MARK: Texts

    /// The first line Hyper-V shows.
    func headline(_ stage: Stage) -> String { MigrationMessages.headline(stage) }

    /// The seed's two lines for a connection the source could not authenticate.
    func connectionMessage(_ status: WindowsStatus) -> String {
        MigrationMessages.connectionFailure(destination: destinationName, status: status)
    }

    func failure(_ rule: RuleID, _ status: WindowsStatus, stage: Stage, message: String, explanation: String,
                 fixes: [String], related: [RuleID] = []) -> MigrationFailure {
        MigrationFailure(rule: rule, relatedRules: related, status: status, stage: stage, source: source.name,
                         destination: destination.name, vm: move.vm, message: message,
                         explanation: explanation, fixes: fixes)
    }

    /// A failure in the seed's exact form (0x8009030E at the source, naming the destination).
    func noCredentials(_ rule: RuleID, explanation: String, fixes: [String], related: [RuleID] = []) -> MigrationFailure {
        failure(rule, .noCredentials, stage: .source, message: connectionMessage(.noCredentials),
                explanation: explanation, fixes: fixes, related: related)
    }
}
