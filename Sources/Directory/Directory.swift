import WindowsStatus

/// A simulated Active Directory forest: domains, their trusts, and per-DC replicas.
///
/// Every write happens on one domain controller and reaches the others only by replication:
/// explicitly (``replicate(from:to:)``, ``replicateAll()``) or, when ``replicationDelay`` is set,
/// once the simulated clock passes the change's due time (``deliverDue(now:)``).
/// Writes that break AD's constraints (duplicate SPN, rule P2) throw and change nothing.
public struct Directory: Sendable, Hashable, Codable {
    /// Domains by lower-cased DNS name.
    public internal(set) var domains: [String: DomainState] = [:]
    /// Domain keys in the order they were added.
    public private(set) var domainOrder: [String] = []
    /// `trustedDomain` objects.
    public private(set) var trusts: [Trust] = []
    /// Delay after which a change reaches the other DCs of its domain by itself; nil: explicit only.
    public var replicationDelay: SimDuration?
    /// Delays for single links, `"from>to"` (lower-cased DC names) → delay; they replace
    /// ``replicationDelay`` on that link. Set with ``setReplicationDelay(_:from:to:)``.
    public private(set) var linkDelays: [String: SimDuration] = [:]
    /// DC key → domain key.
    private var controllerDomain: [String: String] = [:]
    /// NetBIOS name (upper-cased) → domain key.
    private var netBIOSIndex: [String: String] = [:]
    /// Domains whose replication log is not empty (kept so the common "all replicated" check is free).
    /// Sorted, so the directory encodes to stable JSON.
    private var pendingDomains: [String] = []

    private mutating func notePending(_ d: String) {
        let pending = domains[d]?.log.isEmpty == false
        if pending, !pendingDomains.contains(d) { pendingDomains.append(d); pendingDomains.sort() }
        if !pending { pendingDomains.removeAll { $0 == d } }
    }

    public init(replicationDelay: SimDuration? = nil) {
        self.replicationDelay = replicationDelay
    }

    private enum CodingKeys: String, CodingKey {
        case domains, domainOrder, trusts, replicationDelay, linkDelays, controllerDomain, netBIOSIndex, pendingDomains
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        domains = try c.decode([String: DomainState].self, forKey: .domains)
        domainOrder = try c.decode([String].self, forKey: .domainOrder)
        trusts = try c.decode([Trust].self, forKey: .trusts)
        replicationDelay = try c.decodeIfPresent(SimDuration.self, forKey: .replicationDelay)
        linkDelays = try c.decodeIfPresent([String: SimDuration].self, forKey: .linkDelays) ?? [:]
        controllerDomain = try c.decode([String: String].self, forKey: .controllerDomain)
        netBIOSIndex = try c.decode([String: String].self, forKey: .netBIOSIndex)
        // Derived; recomputed so documents written before it existed still load.
        pendingDomains = domainOrder.filter { domains[$0]?.log.isEmpty == false }.sorted()
    }

    // MARK: Domains, controllers, trusts

    /// Adds a domain with its controllers; each controller also gets its computer account
    /// (SERVER_TRUST_ACCOUNT, in `OU=Domain Controllers`) on every replica.
    public mutating func addDomain(_ domain: Domain, controllers: [String]) throws(DirectoryError) {
        guard domains[domain.key] == nil, netBIOSIndex[domain.netBIOSName.uppercased()] == nil else {
            throw DirectoryError(status: .dsObjectExists, message: "Domain \(domain.dnsName) already exists")
        }
        var copy = self
        copy.domains[domain.key] = DomainState(domain: domain)
        copy.domainOrder.append(domain.key)
        copy.netBIOSIndex[domain.netBIOSName.uppercased()] = domain.key
        for dc in controllers { try copy.addController(dc, to: domain.key) }
        self = copy
    }

    /// Adds a domain controller that starts with a full copy of its domain (as after promotion).
    public mutating func addController(_ name: String, to domain: String) throws(DirectoryError) {
        guard let dkey = domainKey(domain), var state = domains[dkey] else {
            throw DirectoryError(status: .noSuchDomain, message: "No domain \(domain)")
        }
        let key = name.lowercased()
        guard controllerDomain[key] == nil else {
            throw DirectoryError(status: .dsObjectExists, message: "Domain controller \(name) already exists")
        }
        var copy = self
        var dc = DomainController(name: name, domain: dkey, replica: state.replica() ?? DirectoryReplica())
        // A new DC has everything the first one has.
        if let first = state.primaryController, let f = state.controllers[first] {
            dc.upToDate = f.upToDate
            dc.upToDate[first] = f.usn
        }
        state.controllers[key] = dc
        state.controllerOrder.append(key)
        copy.domains[dkey] = state
        copy.controllerDomain[key] = dkey
        if copy.replica(of: dkey)?.computers[key] == nil {
            var account = ComputerAccount.standard(name: name, domain: state.domain, hyperV: false, isDomainController: true)
            account.servicePrincipalNames.append("ldap/\(name).\(state.domain.dnsName)")
            try copy.seed(.computer(account), in: dkey)
        }
        self = copy
    }

    /// Records a `trustedDomain` object. Both domains must exist.
    public mutating func addTrust(_ trust: Trust) throws(DirectoryError) {
        guard domains[trust.domain] != nil else { throw DirectoryError(status: .noSuchDomain, message: "No domain \(trust.domain)") }
        guard domains[trust.partner] != nil else { throw DirectoryError(status: .noSuchDomain, message: "No domain \(trust.partner)") }
        if !trusts.contains(trust) { trusts.append(trust) }
    }

    /// Whether `trusting` accepts accounts of `trusted` (same domain, or a direct trust; not transitive).
    public func trusts(_ trusting: String, _ trusted: String) -> Bool {
        let a = trusting.lowercased(), b = trusted.lowercased()
        if a == b { return true }
        for t in trusts {
            if t.domain == a, t.partner == b, t.direction != .inbound { return true }
            if t.domain == b, t.partner == a, t.direction != .outbound { return true }
        }
        return false
    }

    /// The domain key for a DNS or NetBIOS name.
    public func domainKey(_ name: String) -> String? {
        let lower = name.lowercased()
        if domains[lower] != nil { return lower }
        return netBIOSIndex[name.uppercased()]
    }

    public func domain(_ name: String) -> DomainState? { domainKey(name).flatMap { domains[$0] } }

    /// The controller named `name` (any domain).
    public func controller(_ name: String) -> DomainController? {
        let key = name.lowercased()
        guard let d = controllerDomain[key] else { return nil }
        return domains[d]?.controllers[key]
    }

    /// The domain key of controller `name`.
    public func domainOfController(_ name: String) -> String? { controllerDomain[name.lowercased()] }

    mutating func registerController(_ key: String, domain: String) { controllerDomain[key] = domain }

    // MARK: Reading

    /// The replica to read `domain` from: `dc` when it belongs to that domain, else the domain's first DC.
    public func replica(of domain: String, on dc: String? = nil) -> DirectoryReplica? {
        // Quick path: keys as stored (lower-case domain key and DC key).
        if let dc, let r = domains[domain]?.controllers[dc]?.replica { return r }
        guard let state = domains[domain] ?? self.domain(domain) else { return nil }
        if let dc, let c = state.controllers[dc.lowercased()] { return c.replica }
        return state.replica()
    }

    /// A computer by short name, `NAME$` or FQDN, in `domain` (or the domain its FQDN names, or any domain).
    public func computer(_ name: String, domain: String? = nil, on dc: String? = nil) -> ComputerAccount? {
        let key = ServiceTarget.shortKey(name)
        var domainHint = domain
        if domainHint == nil, let dot = name.firstIndex(of: ".") { domainHint = String(name[name.index(after: dot)...]) }
        if let d = domainHint.flatMap(domainKey) { return replica(of: d, on: dc)?.computers[key] }
        for d in domainOrder { if let c = replica(of: d, on: dc)?.computers[key] { return c } }
        return nil
    }

    public func user(_ ref: PrincipalRef, on dc: String? = nil) -> UserAccount? {
        replica(of: ref.domain, on: dc)?.users[ref.name]
    }

    public func group(_ ref: PrincipalRef, on dc: String? = nil) -> Group? {
        replica(of: ref.domain, on: dc)?.groups[ref.name]
    }

    /// Resolves `CONTOSO\alice`, `alice@contoso.com`, `contoso.com\alice` or a bare `alice`
    /// (in `defaultDomain`, else the first domain holding it) to a reference to an existing account.
    public func resolve(_ text: String, defaultDomain: String? = nil) -> PrincipalRef? {
        var domainPart: String? = nil
        var name = Substring(text)
        if let bs = text.firstIndex(of: "\\") {
            domainPart = String(text[..<bs]); name = text[text.index(after: bs)...]
        } else if let at = text.lastIndex(of: "@") {
            domainPart = String(text[text.index(after: at)...]); name = text[..<at]
        }
        let key = name.lowercased()
        func exists(_ d: String) -> Bool {
            guard let r = replica(of: d) else { return false }
            return r.users[key] != nil || r.groups[key] != nil || (key.hasSuffix("$") && r.computers[String(key.dropLast())] != nil)
        }
        if let domainPart {
            guard let d = domainKey(domainPart), exists(d) else { return nil }
            return PrincipalRef(domain: d, name: key)
        }
        if let dd = defaultDomain.flatMap(domainKey), exists(dd) { return PrincipalRef(domain: dd, name: key) }
        for d in domainOrder where exists(d) { return PrincipalRef(domain: d, name: key) }
        return nil
    }

    /// Whether `principal` is a member of `group`, directly or through nested groups (any depth,
    /// across domains). Reads each group from `dc` when it belongs to that group's domain.
    public func isMember(_ principal: PrincipalRef, of group: PrincipalRef, on dc: String? = nil) -> Bool {
        if principal == group { return false }
        // Fast path: a direct member, or not a group at all.
        guard let top = self.group(group, on: dc) else { return false }
        if top.members.contains(principal) { return true }
        var visited: Set<PrincipalRef> = []
        var stack = [group]
        while let g = stack.popLast() {
            guard visited.insert(g).inserted, let grp = self.group(g, on: dc) else { continue }
            if grp.members.contains(principal) { return true }
            for m in grp.members where !m.name.hasSuffix("$") && replica(of: m.domain, on: dc)?.groups[m.name] != nil {
                stack.append(m)
            }
        }
        return false
    }

    /// How `principal` is in `group`: the chain of groups from `group` down to the one that holds
    /// `principal` directly (`[Protected Users, Hyper-V Tier2]` for a user in Hyper-V Tier2,
    /// which is in Protected Users); `[group]` for a direct member; nil when it is not a member.
    /// The shortest chain, as `dc` sees the groups.
    public func membershipPath(of principal: PrincipalRef, in group: PrincipalRef, on dc: String? = nil) -> [PrincipalRef]? {
        var parent: [PrincipalRef: PrincipalRef] = [:]
        var queue = [group]
        var visited: Set<PrincipalRef> = [group]
        var i = 0
        while i < queue.count {
            let g = queue[i]
            i += 1
            guard let grp = self.group(g, on: dc) else { continue }
            if grp.members.contains(principal) {
                var path = [g]
                while let p = parent[path[0]] { path.insert(p, at: 0) }
                return path
            }
            for m in grp.members.sorted() where replica(of: m.domain, on: dc)?.groups[m.name] != nil && visited.insert(m).inserted {
                parent[m] = g
                queue.append(m)
            }
        }
        return nil
    }

    /// ``isMember(_:of:on:)`` reading `group` from `replica` (which holds `replicaDomain` as `dc` sees
    /// it) when it lives there: the quick path for checks that already hold the replica.
    public func isMember(_ principal: PrincipalRef, of group: PrincipalRef, replica: DirectoryReplica?,
                         replicaDomain: String, on dc: String?) -> Bool {
        if group.domain == replicaDomain, let replica {
            guard let g = replica.groups[group.name] else { return false }
            if g.members.contains(principal) { return true }
            if principal == group { return false }
        }
        return isMember(principal, of: group, on: dc)
    }

    /// Whether `domain` (a key) has changes not yet on every DC.
    public func hasPendingReplication(in domain: String) -> Bool {
        !pendingDomains.isEmpty && pendingDomains.contains(domain)
    }

    /// Every group `principal` belongs to, transitively, sorted.
    public func groups(of principal: PrincipalRef, on dc: String? = nil) -> [PrincipalRef] {
        var result: [PrincipalRef] = []
        for d in domainOrder {
            guard let r = replica(of: d, on: dc) else { continue }
            for g in r.groups.values {
                let ref = PrincipalRef(domain: d, name: g.key)
                if isMember(principal, of: ref, on: dc) { result.append(ref) }
            }
        }
        return result.sorted()
    }

    /// Whether `principal` is in its domain's Domain Admins (transitively), as `dc` sees it.
    public func isDomainAdmin(_ principal: PrincipalRef, of domain: String, on dc: String? = nil) -> Bool {
        guard let d = domainKey(domain) else { return false }
        return isMember(principal, of: PrincipalRef(domain: d, name: Group.domainAdmins), on: dc)
    }

    /// Whether the user is marked sensitive or is in Protected Users (rule A4).
    public func cannotBeDelegated(_ user: PrincipalRef, on dc: String? = nil) -> Bool {
        guard let u = self.user(user, on: dc) else { return false }
        if u.sensitive { return true }
        return isMember(user, of: PrincipalRef(domain: user.domain, name: Group.protectedUsers), on: dc)
    }

    /// Forest-wide SPN owner on any replica, other than the object `excluding`.
    public func replicaOwner(ofSPN spn: String, excluding key: String? = nil) -> String? {
        let s = spn.lowercased()
        for d in domainOrder {
            guard let state = domains[d] else { continue }
            for c in state.controllerOrder {
                if let owner = state.controllers[c]?.replica.spnIndex[s], owner != key { return "\(d)\\\(owner)" }
            }
        }
        return nil
    }

    // MARK: Writing

    /// Places an object on every replica of its domain at once (setting up a world, importing LDIF).
    public mutating func seed(_ object: DirectoryObject, in domain: String) throws(DirectoryError) {
        guard let dkey = domainKey(domain), let order = domains[dkey]?.controllerOrder else {
            throw DirectoryError(status: .noSuchDomain, message: "No domain \(domain)")
        }
        try checkSPNs(object)
        // Mutate in place (no copy of the replicas).
        for c in order {
            let version = (domains[dkey]?.controllers[c]?.replica.stamp(of: object)?.version ?? 0) + 1
            domains[dkey]?.controllers[c]?.replica.store(object, stamp: ObjectStamp(version: version, time: .zero, originDC: ""))
        }
    }

    /// Writes an object on one DC (`dc`, default the domain's first) at `time`; the other DCs get it by replication.
    public mutating func write(_ object: DirectoryObject, in domain: String, on dc: String? = nil, at time: SimTime) throws(DirectoryError) {
        guard let dkey = domainKey(domain), let state = domains[dkey] else {
            throw DirectoryError(status: .noSuchDomain, message: "No domain \(domain)")
        }
        guard let ckey = dc?.lowercased() ?? state.primaryController, let controller = state.controllers[ckey] else {
            throw DirectoryError(status: .noSuchDomain, message: "No domain controller \(dc ?? "") in \(state.domain.dnsName)")
        }
        try checkSPNs(object)
        let usn = controller.usn + 1
        let version = (controller.replica.stamp(of: object)?.version ?? 0) + 1
        let stamp = ObjectStamp(version: version, time: time, originDC: ckey)
        let change = DirectoryChange(originDC: ckey, originUSN: usn,
                                     due: replicationDelay.map { time + $0 }, object: object, stamp: stamp)
        let logged = state.controllerOrder.count > 1
        domains[dkey]?.controllers[ckey]?.usn = usn
        domains[dkey]?.controllers[ckey]?.replica.store(object, stamp: stamp)
        if logged {
            domains[dkey]?.log.append(change)
            notePending(dkey)
        }
    }

    private func checkSPNs(_ object: DirectoryObject) throws(DirectoryError) {
        guard case .computer(let c) = object else { return }
        var seen: Set<String> = []
        for spn in c.servicePrincipalNames {
            let lower = spn.lowercased()
            if !seen.insert(lower).inserted || replicaOwner(ofSPN: spn, excluding: object.key) != nil {
                let owner = replicaOwner(ofSPN: spn, excluding: object.key) ?? c.samAccountName
                throw DirectoryError(status: .dsSPNNotUniqueInForest,
                                     message: "SPN \(spn) of \(c.samAccountName) is already registered to \(owner)",
                                     attribute: "servicePrincipalName")
            }
        }
    }

    // MARK: Replication

    /// Pulls every change `from` has and `to` lacks (both DCs of one domain).
    public mutating func replicate(from source: String, to destination: String) throws(DirectoryError) {
        let s = source.lowercased(), t = destination.lowercased()
        guard let d = controllerDomain[s], controllerDomain[t] == d, let state = domains[d],
              let src = state.controllers[s], state.controllers[t] != nil else {
            throw DirectoryError(status: .noSuchDomain,
                                 message: "\(source) and \(destination) are not domain controllers of the same domain")
        }
        guard s != t else { return }
        for change in state.log where src.has(change) { domains[d]?.controllers[t]?.apply(change) }
        domains[d]?.prune()
        notePending(d)
    }

    /// Brings every DC of every domain up to date.
    public mutating func replicateAll() {
        for d in domainOrder {
            guard let state = domains[d], !state.log.isEmpty else { continue }
            for c in state.controllerOrder {
                for change in state.log { domains[d]?.controllers[c]?.apply(change) }
            }
            domains[d]?.prune()
            notePending(d)
        }
    }

    /// Makes changes written on `from` reach `to` by themselves `delay` after they were written
    /// (one direction; both DCs of one domain).
    public mutating func setReplicationDelay(_ delay: SimDuration, from: String, to: String) throws(DirectoryError) {
        let s = from.lowercased(), t = to.lowercased()
        guard let d = controllerDomain[s], controllerDomain[t] == d, s != t else {
            throw DirectoryError(status: .noSuchDomain, message: "\(from) and \(to) are not two domain controllers of the same domain")
        }
        linkDelays["\(s)>\(t)"] = delay
    }

    /// Delivers every change whose due time is at or before `now` to every DC (delayed replication):
    /// on a link with its own delay, written time + that delay; elsewhere the change's due time.
    /// Changes from one DC fall due in the order they were written, so applying in log order keeps
    /// each DC's up-to-dateness vector exact.
    public mutating func deliverDue(now: SimTime) {
        for d in domainOrder {
            guard let state = domains[d], !state.log.isEmpty else { continue }
            for c in state.controllerOrder {
                for change in state.log {
                    if let delay = linkDelays.isEmpty ? nil : linkDelays["\(change.originDC)>\(c)"] {
                        guard change.stamp.time + delay <= now else { continue }
                    } else {
                        guard let due = change.due, due <= now else { continue }
                    }
                    domains[d]?.controllers[c]?.apply(change)
                }
            }
            domains[d]?.prune()
            notePending(d)
        }
    }

    /// Whether some change written on any DC of `domain` has not reached `dc` yet.
    public func hasPendingChanges(for dc: String) -> Bool {
        guard let d = controllerDomain[dc.lowercased()], let state = domains[d] else { return false }
        return !state.pendingChanges(for: dc).isEmpty
    }
}
