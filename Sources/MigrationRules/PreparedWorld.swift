import Directory
import Hosts

/// A snapshot of a ``World`` with every name resolved to an integer id once, for deciding many
/// moves quickly (`migauth audit`, `migauth-bench sim`).
///
/// Building it reads each host, account and ticket once: per host the facts the rules use (role,
/// migration settings, generation, domain, the delegation its ticket carries and the newest one
/// in the directory, as sorted destination-id lists), per signed-on user whether P1 allows and A4
/// blocks on each host, and the trust matrix between domains. ``decide(_:collectAll:)`` then runs
/// the rules of ``World/evaluate(_:)`` on those integers — no string is hashed, no `SimulatedHost` copied.
///
/// Only the verdict (which rules block) is computed this way; ``evaluate(_:)`` returns the very
/// `MoveOutcome` that `World.evaluate` returns, falling back to it whenever texts are needed (a
/// failure, an S1 or A3 warning). `PreparedWorldTests` checks both against the world's own
/// evaluation for every ordered host pair of the fixtures and of generated worlds. The snapshot
/// does not follow later changes to the world: prepare again after changing it.
public struct PreparedWorld: Sendable {
    /// The world this was prepared from.
    public let world: World

    /// Per-host facts, POD only (copying one retains nothing).
    struct HostFacts: Sendable {
        var hypervisor: Bool
        var migrationEnabled: Bool
        var kerberos: Bool
        var credentialGuard: Bool
        var usesWinRM: Bool
        var useAnyNetwork: Bool
        var os: OSGeneration
        var domain: Int32
        /// N1 without a requested address: the address chosen, or nil when refused.
        var defaultAddressOK: Bool
        var defaultAddress: IPv4Address?
        /// The A3 stale-ticket warning cannot be ruled out without texts.
        var mayWarnStale: Bool
        /// The delegation in the ticket the host would present (A2).
        var effectiveKind: DelegationKind
        /// The newest delegation in any replica of its domain (A3); nil: no account anywhere.
        var newestKind: DelegationKind?
    }

    /// Destination ids a host may delegate to, per service class, as sorted lists in one flat array.
    struct TargetLists: Sendable {
        var start: [Int32] = [0]
        var ids: [Int32] = []

        mutating func append(_ list: [Int32]) {
            ids.append(contentsOf: list.sorted())
            start.append(Int32(ids.count))
        }

        @inline(__always)
        func contains(_ host: Int, _ target: Int32) -> Bool {
            var lo = Int(start[host]), hi = Int(start[host + 1])
            while lo < hi {
                let mid = (lo + hi) >> 1
                let v = ids[mid]
                if v == target { return true }
                if v < target { lo = mid + 1 } else { hi = mid }
            }
            return false
        }
    }

    let facts: [HostFacts]
    /// Host keys by id (`hostOrder`), and id by key.
    public let hostKeys: [String]
    let hostIndex: [String: Int32]
    let effectiveMigration: TargetLists
    let effectiveCIFS: TargetLists
    let newestMigration: TargetLists
    let newestCIFS: TargetLists
    /// Domain ids: `trusts[a * domainCount + b]` is `Directory.trusts(a, b)`.
    let domainCount: Int
    let trusts: [Bool]
    let domainIndex: [String: Int32]
    /// Signed-on users (and those named at preparation) by id.
    public let users: [PrincipalRef]
    let userIndex: [PrincipalRef: Int32]
    let userDomain: [Int32]
    /// `allowed[u * hostCount + h]`: P1 lets user `u` migrate on host `h`.
    let allowed: [Bool]
    /// `nonDelegable[u * hostCount + h]`: A4 blocks user `u` when `h` is the source.
    let nonDelegable: [Bool]

    public var hostCount: Int { hostKeys.count }

    /// Prepares `world`; `extraUsers` are resolved too (any signed-on user is included anyway).
    public init(_ world: World, extraUsers: [PrincipalRef] = []) {
        self.world = world
        let dir = world.directory
        let keys = world.hostOrder
        let hosts = keys.compactMap { world.hosts[$0] }
        hostKeys = hosts.map(\.key)
        var index: [String: Int32] = [:]
        for (i, h) in hosts.enumerated() { index[h.key] = Int32(i) }
        hostIndex = index

        var domains: [String: Int32] = [:]
        var domainNames: [String] = []
        func domainID(_ d: String) -> Int32 {
            if let i = domains[d] { return i }
            let i = Int32(domainNames.count)
            domains[d] = i
            domainNames.append(d)
            return i
        }
        for d in dir.domainOrder { _ = domainID(d) }

        var facts: [HostFacts] = []
        facts.reserveCapacity(hosts.count)
        var effM = TargetLists(), effC = TargetLists(), newM = TargetLists(), newC = TargetLists()
        func lists(_ snap: DelegationSnapshot) -> ([Int32], [Int32]) {
            var m: [Int32] = [], c: [Int32] = []
            for t in snap.targets {
                guard let id = index[t.host] else { continue }
                switch t.serviceClass {
                case .migration: m.append(id)
                case .cifs: c.append(id)
                default: break
                }
            }
            return (m, c)
        }
        let now = world.now
        for h in hosts {
            let settings = h.migration
            let (address, addressOK) = Self.defaultAddress(of: h)
            // A2's effective setting: the valid TGT's snapshot, else what the logon DC holds.
            let ticket = h.tickets.validTGT(at: now)
            let effective = ticket?.delegation
                ?? dir.computer(h.name, domain: h.domain, on: h.logonDC)?.delegationSnapshot ?? .none
            let newest = world.newestComputerAccount(h.name, domain: h.domain)?.delegationSnapshot
            let quiet = Self.isQuiet(h, ticket: ticket, directory: dir)
            let (em, ec) = lists(effective)
            effM.append(em); effC.append(ec)
            let (nm, nc) = newest.map(lists) ?? ([], [])
            newM.append(nm); newC.append(nc)
            facts.append(HostFacts(hypervisor: h.hypervisorInstalled, migrationEnabled: settings.enabled,
                                   kerberos: settings.authenticationType == .kerberos, credentialGuard: h.credentialGuard,
                                   usesWinRM: h.os.usesWinRMForRemoteManagement, useAnyNetwork: settings.useAnyNetwork,
                                   os: h.os, domain: domainID(h.domain), defaultAddressOK: addressOK, defaultAddress: address,
                                   mayWarnStale: !quiet, effectiveKind: effective.kind, newestKind: newest?.kind))
        }
        self.facts = facts
        effectiveMigration = effM
        effectiveCIFS = effC
        newestMigration = newM
        newestCIFS = newC

        // Users: everyone signed on somewhere, plus the extra ones.
        var userList: [PrincipalRef] = []
        var uIndex: [PrincipalRef: Int32] = [:]
        for u in extraUsers + hosts.flatMap({ $0.signOns.map(\.user) }) where uIndex[u] == nil {
            uIndex[u] = Int32(userList.count)
            userList.append(u)
        }
        users = userList
        userIndex = uIndex
        userDomain = userList.map { domainID($0.domain) }
        (allowed, nonDelegable) = Self.userTables(userList, hosts: hosts, directory: dir)

        domainIndex = domains
        domainCount = domainNames.count
        trusts = Self.trustMatrix(domainNames, directory: dir)
    }

    /// Whether domain `a` trusts domain `b`, row-major over `domainNames` × `domainNames`.
    private static func trustMatrix(_ domainNames: [String], directory: Directory) -> [Bool] {
        var trusts: [Bool] = []
        trusts.reserveCapacity(domainNames.count * domainNames.count)
        for a in domainNames { for b in domainNames { trusts.append(directory.trusts(a, b)) } }
        return trusts
    }

    /// N1 as ``N1Networks`` decides it without a requested address: the address a move to `h` would use.
    private static func defaultAddress(of h: SimulatedHost) -> (IPv4Address?, Bool) {
        if h.migration.useAnyNetwork { return (h.addresses.first, true) }
        for network in h.migration.networks {
            if let a = h.addresses.first(where: { network.subnet.contains($0) }) { return (a, true) }
        }
        return (nil, false)
    }

    /// A3's warning fast path (``A3DelegationTakesEffectLate``'s `warnIfStale`): nothing pending and the
    /// ticket (if any) issued from the account as the logon DC holds it now.
    private static func isQuiet(_ h: SimulatedHost, ticket: KerberosTicket?, directory dir: Directory) -> Bool {
        guard !dir.hasPendingReplication(in: h.domain) else { return false }
        guard let ticket else { return true }
        guard let issued = ticket.accountStamp else { return false }
        return dir.replica(of: h.domain, on: h.logonDC)?.computerStamps[h.key] == issued
    }

    /// P1 (`allowed`) and A4 (`nonDelegable`) for every (user, host), user-major.
    private static func userTables(_ users: [PrincipalRef], hosts: [SimulatedHost], directory dir: Directory) -> ([Bool], [Bool]) {
        var allowed: [Bool] = [], nonDelegable: [Bool] = []
        allowed.reserveCapacity(users.count * hosts.count)
        nonDelegable.reserveCapacity(users.count * hosts.count)
        for u in users {
            for h in hosts {
                let replica = dir.replica(of: h.domain, on: h.logonDC)
                allowed.append(P1PermissionToMigrate.isAllowed(u, on: h, directory: dir, replica: replica))
                nonDelegable.append(PreparedWorld.a4Blocks(u, source: h, directory: dir, replica: replica))
            }
        }
        return (allowed, nonDelegable)
    }

    /// Rule A4's test (``A4NonDelegableUsers``) for `user` starting from `source`.
    static func a4Blocks(_ user: PrincipalRef, source: SimulatedHost, directory dir: Directory, replica: DirectoryReplica?) -> Bool {
        let sameDomain = user.domain == source.domain
        guard let account = sameDomain ? replica?.users[user.name] : dir.user(user, on: source.logonDC) else { return false }
        if account.sensitive { return true }
        return dir.isMember(user, of: PrincipalRef(normalizedDomain: user.domain, name: A4NonDelegableUsers.protectedUsersKey),
                            replica: sameDomain ? replica : nil, replicaDomain: source.domain, on: source.logonDC)
    }

    /// The id of a host (short name, `NAME$` or FQDN).
    public func hostID(_ name: String) -> Int? { hostIndex[ServiceTarget.shortKey(name)].map(Int.init) }

    /// The id of a prepared user.
    public func userID(_ user: PrincipalRef) -> Int? { userIndex[user].map(Int.init) }

    // MARK: Moves

    /// A move with its names resolved to ids.
    public struct ResolvedMove: Sendable {
        public let source: Int32
        public let destination: Int32
        public let origin: Int32
        public let user: Int32
        public let kind: MoveKind
        public let session: SignOnKind
        /// The VM exists on the source.
        public let vmOnSource: Bool
        /// The address the user asked for: nil when none, `.invalid` when it does not parse.
        let requested: RequestedAddress
        /// The request itself (for reports and the full evaluation).
        public let request: MoveRequest?

        enum RequestedAddress: Sendable { case none, invalid, address(IPv4Address) }

        /// A move for an audit: `user`'s `session` on `origin` moves a VM that exists on `source`.
        public init(source: Int, destination: Int, origin: Int, user: Int, kind: MoveKind, session: SignOnKind) {
            self.source = Int32(source)
            self.destination = Int32(destination)
            self.origin = Int32(origin)
            self.user = Int32(user)
            self.kind = kind
            self.session = session
            self.vmOnSource = true
            self.requested = .none
            self.request = nil
        }

        init(source: Int32, destination: Int32, origin: Int32, user: Int32, kind: MoveKind, session: SignOnKind,
             vmOnSource: Bool, requested: RequestedAddress, request: MoveRequest) {
            self.source = source
            self.destination = destination
            self.origin = origin
            self.user = user
            self.kind = kind
            self.session = session
            self.vmOnSource = vmOnSource
            self.requested = requested
            self.request = request
        }
    }

    /// Resolves a move's names (hosts, user, session, VM) once. Throws what ``World/evaluate(_:)`` throws.
    public func resolve(_ move: MoveRequest) throws(SimulationError) -> ResolvedMove {
        let ctx = try MoveContext(world: world, move: move)
        guard let s = hostIndex[ctx.source.key], let d = hostIndex[ctx.destination.key], let o = hostIndex[ctx.origin.key],
              let u = userIndex[ctx.user] else {
            // Cannot happen: MoveContext found them in this world, and a session's user is prepared.
            throw SimulationError.unknownPrincipal(move.user)
        }
        let requested: ResolvedMove.RequestedAddress
        if let text = move.destinationAddress {
            requested = IPv4Address(text).map { .address($0) } ?? .invalid
        } else {
            requested = .none
        }
        return ResolvedMove(source: s, destination: d, origin: o, user: u, kind: move.kind, session: ctx.session.kind,
                            vmOnSource: ctx.source.virtualMachines[move.keys.vm] != nil, requested: requested, request: move)
    }

    /// The rules a move breaks, in the order ``World/evaluate(_:)`` (`first`) and
    /// ``World/diagnose(_:)`` (`all`, with `collectAll`) meet them.
    public struct Verdict: Sendable, Hashable {
        /// The rule that stops the move; nil when it authenticates.
        public var first: RuleID?
        /// Every rule that fails (only `first` unless decided with `collectAll`).
        public var all: RuleSet

        public var works: Bool { first == nil }
    }

    /// Decides a move with the rules of ``Evaluator`` on prepared facts.
    public func decide(_ m: ResolvedMove, collectAll: Bool = false) -> Verdict {
        var v = Verdict(first: nil, all: RuleSet())
        @inline(__always) func hit(_ rule: RuleID) -> Bool {
            if v.first == nil { v.first = rule }
            v.all.insert(rule)
            return !collectAll
        }
        let si = Int(m.source), di = Int(m.destination)
        let s = facts[si], d = facts[di]
        let ux = Int(m.user) * facts.count
        let movesVM = m.kind.movesVM
        // 1. Source: role, permission, the VM, migration enabled (P3, P1, P3).
        if !s.hypervisor && hit(.p3) { return v }
        if !allowed[ux + si] && hit(.p1) { return v }
        if si == di || !m.vmOnSource || (movesVM && !s.migrationEnabled) {
            if hit(.p3) { return v }
        }
        // 2. Destination listener (P3, N1).
        if movesVM {
            if (!d.hypervisor || !d.migrationEnabled) && hit(.p3) { return v }
            if !n1Accepts(m, d, di) && hit(.n1) { return v }
        }
        // 3. Authentication at the source (P5, then A1/A7/A4 or A4/A5/A2).
        let ud = userDomain[Int(m.user)]
        if !(s.domain == d.domain && d.domain == ud) {
            let n = domainCount, sd = Int(s.domain), dd = Int(d.domain), u = Int(ud)
            if (!trusts[dd * n + sd] || !trusts[sd * n + dd] || !trusts[sd * n + u] || !trusts[dd * n + u]) && hit(.p5) { return v }
        }
        let startedAtSource = m.origin == m.source
        if s.kerberos {
            if nonDelegable[ux + si] && hit(.a4) { return v }
            if s.domain != d.domain && hit(.a5) { return v }
            if let rule = a2(m, s, si), hit(rule) { return v }
        } else {
            if !(startedAtSource && m.session.hasReusableCredentials) && hit(.a1) { return v }
            if s.credentialGuard && hit(.a7) { return v }
            if nonDelegable[ux + si] && hit(.a4) { return v }
        }
        // 4. The destination authorises and accepts the VM (P1, P4).
        if !allowed[ux + di] && hit(.p1) { return v }
        if movesVM && d.os < s.os && hit(.p4) { return v }
        return v
    }

    @inline(__always)
    private func n1Accepts(_ m: ResolvedMove, _ d: HostFacts, _ di: Int) -> Bool {
        switch m.requested {
        case .none: return d.defaultAddressOK
        case .invalid: return false
        case .address(let a):
            if d.useAnyNetwork { return true }
            return world.hosts[hostKeys[di]]?.migration.network(containing: a) != nil
        }
    }

    /// A2 (with A2b and A3 as ``A2ConstrainedDelegation/check(_:_:)`` reports them).
    @inline(__always)
    private func a2(_ m: ResolvedMove, _ s: HostFacts, _ si: Int) -> RuleID? {
        let dest = m.destination
        func allows(_ kind: DelegationKind?, _ list: TargetLists) -> Bool {
            switch kind {
            case nil, .none?: return false
            case .unconstrained?: return true
            case .constrainedKerberosOnly?, .constrainedAnyProtocol?: return list.contains(si, dest)
            }
        }
        let needMigration = m.kind.movesVM, needCIFS = m.kind.needsCIFS
        let missingMigration = needMigration && !allows(s.effectiveKind, effectiveMigration)
        let missingCIFS = needCIFS && !allows(s.effectiveKind, effectiveCIFS)
        let remotelyManaged = m.origin != m.source || m.session.isRemoteShell
        let needsPT = s.usesWinRM && remotelyManaged
        if missingMigration || missingCIFS {
            // A3: the newest setting would allow what is missing.
            if let newest = s.newestKind,
               (!missingMigration || allows(newest, newestMigration)) && (!missingCIFS || allows(newest, newestCIFS)),
               !(needsPT && newest == .constrainedKerberosOnly) {
                return .a3
            }
            return .a2
        }
        if needsPT && s.effectiveKind == .constrainedKerberosOnly {
            return s.newestKind == .constrainedAnyProtocol ? .a3 : .a2b
        }
        return nil
    }

    /// What the newest directory setting of the move's source lacks for it (rules A2, A2b): the
    /// migration-service and `cifs` entries to the destination, and protocol transition.
    public func missingDelegation(_ m: ResolvedMove) -> (migration: Bool, cifs: Bool, protocolTransition: Bool) {
        let si = Int(m.source)
        let s = facts[si]
        func allows(_ list: TargetLists) -> Bool {
            switch s.newestKind {
            case nil, .none?: return false
            case .unconstrained?: return true
            case .constrainedKerberosOnly?, .constrainedAnyProtocol?: return list.contains(si, m.destination)
            }
        }
        let needsPT = s.usesWinRM && (m.origin != m.source || m.session.isRemoteShell)
        return (m.kind.movesVM && !allows(newestMigration), m.kind.needsCIFS && !allows(newestCIFS),
                needsPT && s.newestKind != .constrainedAnyProtocol && s.newestKind != .unconstrained)
    }

    /// The same `MoveOutcome` as ``World/evaluate(_:)``: built here for a plain success, taken from
    /// the world's evaluation when it needs texts (failures, warnings).
    public func evaluate(_ m: ResolvedMove) throws(SimulationError) -> MoveOutcome {
        guard let request = m.request else {
            throw SimulationError(status: .invalidArgument, message: "An audit move has no request to evaluate")
        }
        let v = decide(m)
        let si = Int(m.source), di = Int(m.destination)
        let s = facts[si], d = facts[di]
        let s1 = m.kind.movesVM && d.useAnyNetwork
        guard v.works, !s1, !(s.kerberos && s.mayWarnStale) else { return try world.evaluate(request) }
        let address: IPv4Address?
        if m.kind.movesVM {
            if case .address(let a) = m.requested { address = a } else { address = d.defaultAddress }
        } else {
            address = nil
        }
        return .success(MoveReport(move: request, source: hostName(si), destination: hostName(di),
                                   authentication: s.kerberos ? .kerberos : .credSSP, destinationAddress: address,
                                   warnings: []))
    }

    /// A host's name as configured.
    public func hostName(_ id: Int) -> String { world.hosts[hostKeys[id]]?.name ?? hostKeys[id] }
}

/// A set of rule ids (a bit per ``RuleID``).
public struct RuleSet: Sendable, Hashable, Sequence {
    public private(set) var bits: UInt32 = 0

    public init() {}

    public init(_ rules: some Sequence<RuleID>) {
        for r in rules { insert(r) }
    }

    @inline(__always)
    private static func bit(_ r: RuleID) -> UInt32 {
        switch r {
        case .p1: return 1 << 0
        case .p2: return 1 << 1
        case .p3: return 1 << 2
        case .p4: return 1 << 3
        case .p5: return 1 << 4
        case .n1: return 1 << 5
        case .n2: return 1 << 6
        case .a1: return 1 << 7
        case .a2: return 1 << 8
        case .a2b: return 1 << 9
        case .a3: return 1 << 10
        case .a4: return 1 << 11
        case .a5: return 1 << 12
        case .a6: return 1 << 13
        case .a7: return 1 << 14
        case .s1: return 1 << 15
        }
    }

    @inline(__always)
    public mutating func insert(_ r: RuleID) { bits |= RuleSet.bit(r) }

    public func contains(_ r: RuleID) -> Bool { bits & RuleSet.bit(r) != 0 }

    public var isEmpty: Bool { bits == 0 }

    /// Bit `i` is `RuleID.allCases[i]`.
    private static let rules = RuleID.allCases

    /// The position of a rule in ``RuleID/allCases`` (its bit).
    public static func position(_ r: RuleID) -> Int { bit(r).trailingZeroBitCount }

    /// The rule at `position` in ``RuleID/allCases``.
    public static func rule(at position: Int) -> RuleID { rules[position] }

    /// The rules in ``RuleID`` order (no allocation).
    public struct Iterator: IteratorProtocol {
        var rest: UInt32
        public mutating func next() -> RuleID? {
            guard rest != 0 else { return nil }
            let i = rest.trailingZeroBitCount
            rest &= rest - 1
            return RuleSet.rules[i]
        }
    }

    public func makeIterator() -> Iterator { Iterator(rest: bits) }
}
