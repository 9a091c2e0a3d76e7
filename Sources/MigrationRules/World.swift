import Directory
import Hosts
import WindowsStatus

/// The whole simulated world: the directory, the hosts and the clock, as one value.
///
/// Mutate it with ``apply(_:)``; ask it with ``evaluate(_:)`` and ``diagnose(_:)`` (which never
/// mutate). It is `Codable`, so a scenario or the CLI can persist it as JSON (encode with
/// `.sortedKeys` for stable output).
public struct World: Sendable, Hashable, Codable {
    public var directory: Directory
    /// Hosts by lower-cased short name.
    public internal(set) var hosts: [String: SimulatedHost]
    /// Host keys in the order they were added.
    public internal(set) var hostOrder: [String]
    public internal(set) var clock: SimulatedClock
    /// Lifetime of tickets hosts obtain (10 hours by default).
    public var ticketLifetime: SimDuration

    public init(directory: Directory = Directory(), clock: SimulatedClock = SimulatedClock(),
                ticketLifetime: SimDuration = TicketCache.defaultLifetime) {
        self.directory = directory
        self.hosts = [:]
        self.hostOrder = []
        self.clock = clock
        self.ticketLifetime = ticketLifetime
    }

    public var now: SimTime { clock.now }

    /// The host named `name` (short name, `NAME$` or FQDN; case-insensitive).
    @inlinable
    public func host(_ name: String) -> SimulatedHost? { hosts[ServiceTarget.shortKey(name)] }

    /// Hosts in the order they were added.
    public var allHosts: [SimulatedHost] { hostOrder.compactMap { hosts[$0] } }

    /// Adds a host (booting it: it obtains a TGT from its logon DC). Its computer account must
    /// exist in its domain, and its logon DC must be a DC of that domain.
    public mutating func addHost(_ host: SimulatedHost) throws(SimulationError) {
        guard hosts[host.key] == nil else {
            throw SimulationError(status: .dsObjectExists, message: "Host \(host.name) already exists")
        }
        guard let dkey = directory.domainKey(host.domain) else {
            throw SimulationError(status: .noSuchDomain, message: "Host \(host.name): no domain \(host.domain)")
        }
        guard directory.domainOfController(host.logonDC) == dkey else {
            throw SimulationError(status: .noSuchDomain, message: "Host \(host.name): \(host.logonDC) is not a DC of \(dkey)")
        }
        guard directory.computer(host.name, domain: dkey) != nil else {
            throw SimulationError(status: .dsNoSuchObject, message: "Host \(host.name): no computer account \(host.name)$ in \(dkey)")
        }
        var h = host
        h.domain = dkey
        hosts[h.key] = h
        hostOrder.append(h.key)
        obtainTGT(h.key)
    }

    /// Creates the computer account (on every DC) and the host in one go.
    public mutating func addHost(name: String, domain: String, os: OSGeneration = .ws2012R2, hypervisor: Bool = true,
                                 logonDC: String? = nil, addresses: [String] = []) throws(SimulationError) {
        guard let state = directory.domain(domain) else {
            throw SimulationError(status: .noSuchDomain, message: "No domain \(domain)")
        }
        var ips: [IPv4Address] = []
        for a in addresses {
            guard let ip = IPv4Address(a) else { throw SimulationError(status: .invalidArgument, message: "Not an IPv4 address: \(a)") }
            ips.append(ip)
        }
        let dc = logonDC ?? state.primaryController ?? ""
        guard directory.domainOfController(dc) == state.domain.key else {
            throw SimulationError(status: .noSuchDomain, message: "Host \(name): \(dc) is not a DC of \(state.domain.key)")
        }
        guard host(name) == nil else { throw SimulationError(status: .dsObjectExists, message: "Host \(name) already exists") }
        // Validated above: seeding the account and adding the host cannot fail half-way.
        if directory.computer(name, domain: state.domain.key) == nil {
            do {
                try directory.seed(.computer(.standard(name: name, domain: state.domain, hyperV: hypervisor,
                                                       operatingSystem: os.productName)), in: state.domain.key)
            } catch { throw SimulationError(error) }
        }
        try addHost(SimulatedHost(name: name, domain: state.domain.key, os: os, hypervisorInstalled: hypervisor,
                         logonDC: dc, addresses: ips))
    }

    /// Replaces a host's state (for builders and the CLI's direct edits). The host must exist.
    public mutating func updateHost(_ name: String, _ change: (inout SimulatedHost) throws(HostError) -> Void) throws(SimulationError) {
        let key = ServiceTarget.shortKey(name)
        guard var h = hosts[key] else { throw SimulationError.unknownHost(name) }
        do { try change(&h) } catch { throw SimulationError(error) }
        hosts[key] = h
    }

    // MARK: Tickets (rule A3)

    /// The delegation setting the source's own ticket carries now: its valid TGT's snapshot, or
    /// what a new TGT from its logon DC would carry. Also says which DC and whether it is cached.
    public func effectiveDelegation(of hostName: String) -> (snapshot: DelegationSnapshot, issuedBy: String, cached: Bool)? {
        guard let h = host(hostName) else { return nil }
        if let t = h.tickets.validTGT(at: now) { return (t.delegation, t.issuedBy, true) }
        let account = directory.computer(h.name, domain: h.domain, on: h.logonDC)
        return (account?.delegationSnapshot ?? .none, h.logonDC, false)
    }

    /// The newest version of a computer account among all DCs of its domain (what the directory
    /// will say once replication finishes).
    public func newestComputerAccount(_ name: String, domain: String) -> ComputerAccount? {
        guard let state = directory.domain(domain) else { return nil }
        let key = ServiceTarget.shortKey(name)
        var best: (ObjectStamp, ComputerAccount)? = nil
        for c in state.controllerOrder {
            guard let dc = state.controllers[c], let acct = dc.replica.computers[key] else { continue }
            let stamp = dc.replica.computerStamps[key] ?? ObjectStamp(version: 0, time: .zero, originDC: "")
            if let b = best, b.0 >= stamp { continue }
            best = (stamp, acct)
        }
        return best?.1
    }

    /// Gives a host a fresh TGT from its logon DC (if it has none valid).
    mutating func obtainTGT(_ key: String) {
        guard var h = hosts[key], h.tickets.validTGT(at: now) == nil else { return }
        let replica = directory.replica(of: h.domain, on: h.logonDC)
        let account = replica?.computers[h.key]
        h.tickets.store(tgt: KerberosTicket(server: "krbtgt/\(h.domain.uppercased())", issuedBy: h.logonDC,
                                            issuedAt: now, expiresAt: now + ticketLifetime,
                                            delegation: account?.delegationSnapshot ?? .none,
                                            accountStamp: replica?.computerStamps[h.key]))
        hosts[key] = h
    }

    /// Advances the clock, delivering delayed replication and dropping expired tickets.
    public mutating func advance(by duration: SimDuration) {
        clock.advance(by: duration)
        let t = now
        directory.deliverDue(now: t)
        for k in hostOrder { hosts[k]?.tickets.expire(at: t) }
    }
}

extension SimulationError {
    static func unknownHost(_ name: String) -> SimulationError {
        SimulationError(status: .targetUnknown, message: "No host named \(name)")
    }
    static func unknownPrincipal(_ name: String) -> SimulationError {
        SimulationError(status: .dsNoSuchObject, message: "No account named \(name)")
    }
}
