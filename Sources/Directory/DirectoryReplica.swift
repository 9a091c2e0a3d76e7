/// One domain controller's copy of its domain's objects.
public struct DirectoryReplica: Sendable, Hashable, Codable {
    /// Computers by lower-cased short name (`testserver01`).
    public internal(set) var computers: [String: ComputerAccount] = [:]
    /// Users by lower-cased `sAMAccountName`.
    public internal(set) var users: [String: UserAccount] = [:]
    /// Groups by lower-cased `sAMAccountName`.
    public internal(set) var groups: [String: Group] = [:]
    /// Version stamps for last-writer-wins replication: users and groups by key (`alice`).
    public internal(set) var stamps: [String: ObjectStamp] = [:]
    /// Version stamps of computers by short key (`testserver01`).
    public internal(set) var computerStamps: [String: ObjectStamp] = [:]
    /// Lower-cased SPN → owning object key, for forest-wide uniqueness checks.
    var spnIndex: [String: String] = [:]

    public init() {}

    /// The object with this key (`testserver01$`, `alice`, `domain admins`).
    public func object(key: String) -> DirectoryObject? {
        if key.hasSuffix("$"), let c = computers[String(key.dropLast())] { return .computer(c) }
        if let u = users[key] { return .user(u) }
        if let g = groups[key] { return .group(g) }
        return nil
    }

    /// Writes an object (replacing any with the same key) and keeps the SPN index current.
    mutating func store(_ object: DirectoryObject, stamp: ObjectStamp) {
        let key = object.key
        if case .computer(let old)? = self.object(key: key) {
            for spn in old.servicePrincipalNames { spnIndex[spn.lowercased()] = nil }
        }
        switch object {
        case .computer(let c):
            computers[c.key] = c
            computerStamps[c.key] = stamp
            for spn in c.servicePrincipalNames { spnIndex[spn.lowercased()] = key }
        case .user(let u): users[u.key] = u; stamps[key] = stamp
        case .group(let g): groups[g.key] = g; stamps[key] = stamp
        }
    }

    /// The replication stamp of the stored object with `object`'s key.
    public func stamp(of object: DirectoryObject) -> ObjectStamp? {
        if case .computer(let c) = object { return computerStamps[c.key] }
        return stamps[object.key]
    }

    /// The object key owning `spn`, if any.
    public func owner(ofSPN spn: String) -> String? { spnIndex[spn.lowercased()] }

    public var objectCount: Int { computers.count + users.count + groups.count }
}

/// Replication metadata: a higher version wins; ties go to the later time, then the DC name.
public struct ObjectStamp: Sendable, Hashable, Codable, Comparable {
    public var version: UInt64
    public var time: SimTime
    public var originDC: String

    public init(version: UInt64, time: SimTime, originDC: String) {
        self.version = version
        self.time = time
        self.originDC = originDC
    }

    public static func < (a: ObjectStamp, b: ObjectStamp) -> Bool {
        (a.version, a.time.seconds, a.originDC) < (b.version, b.time.seconds, b.originDC)
    }
}

/// One originating write, as the replication log keeps it until every DC of the domain has it.
public struct DirectoryChange: Sendable, Hashable, Codable {
    /// Lower-cased name of the DC where the change was written.
    public var originDC: String
    /// That DC's update sequence number for this write.
    public var originUSN: UInt64
    /// When delayed replication delivers it to the other DCs (nil: only explicit replication).
    public var due: SimTime?
    public var object: DirectoryObject
    public var stamp: ObjectStamp
}

/// A domain controller: a name and its own replica, plus what it has seen from each other DC.
public struct DomainController: Sendable, Hashable, Codable {
    /// `DC01` as configured.
    public var name: String
    /// Lower-cased DNS name of its domain.
    public var domain: String
    public internal(set) var replica: DirectoryReplica
    /// Highest USN this DC has written.
    public internal(set) var usn: UInt64
    /// Up-to-dateness vector: for each originating DC (lower-cased), the highest USN applied here.
    public internal(set) var upToDate: [String: UInt64]

    public init(name: String, domain: String, replica: DirectoryReplica = DirectoryReplica()) {
        self.name = name
        self.domain = domain.lowercased()
        self.replica = replica
        self.usn = 0
        self.upToDate = [:]
    }

    public var key: String { name.lowercased() }

    /// Whether this DC has applied `change`.
    public func has(_ change: DirectoryChange) -> Bool {
        if change.originDC == key { return true }
        return (upToDate[change.originDC] ?? 0) >= change.originUSN
    }

    mutating func apply(_ change: DirectoryChange) {
        guard !has(change) else { return }
        upToDate[change.originDC] = change.originUSN
        if let current = replica.stamp(of: change.object), current >= change.stamp { return }
        replica.store(change.object, stamp: change.stamp)
    }
}

/// A domain with its controllers and the changes still replicating between them.
public struct DomainState: Sendable, Hashable, Codable {
    public var domain: Domain
    /// Controllers by lower-cased name.
    public internal(set) var controllers: [String: DomainController]
    /// Controller keys in the order they were added (the first is the default write target).
    public internal(set) var controllerOrder: [String]
    /// Originating writes in the order they were made, kept until all controllers have them.
    public internal(set) var log: [DirectoryChange]

    public init(domain: Domain) {
        self.domain = domain
        self.controllers = [:]
        self.controllerOrder = []
        self.log = []
    }

    /// The first controller's key.
    public var primaryController: String? { controllerOrder.first }

    /// The replica of `dc` (a key or name), or of the first controller when nil.
    public func replica(_ dc: String? = nil) -> DirectoryReplica? {
        let key = dc?.lowercased() ?? primaryController
        guard let key else { return nil }
        return controllers[key]?.replica
    }

    /// Changes written on some controller that `dc` has not received yet.
    public func pendingChanges(for dc: String) -> [DirectoryChange] {
        guard let c = controllers[dc.lowercased()] else { return [] }
        return log.filter { !c.has($0) }
    }

    mutating func prune() {
        let all = controllerOrder.compactMap { controllers[$0] }
        log.removeAll { ch in all.allSatisfy { $0.has(ch) } }
    }
}
