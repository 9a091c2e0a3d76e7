/// One domain controller's copy of its domain's objects.
public struct DirectoryReplica: Sendable, Hashable, Codable {
    /// Copy-on-write storage: copying a replica (as every lookup does) costs one reference count.
    final class Storage: @unchecked Sendable {
        var computers: [String: ComputerAccount] = [:]
        var users: [String: UserAccount] = [:]
        var groups: [String: Group] = [:]
        var stamps: [String: ObjectStamp] = [:]
        var computerStamps: [String: ObjectStamp] = [:]
        var spnIndex: [String: String] = [:]
        init() {}
        func copy() -> Storage {
            let c = Storage()
            c.computers = computers
            c.users = users
            c.groups = groups
            c.stamps = stamps
            c.computerStamps = computerStamps
            c.spnIndex = spnIndex
            return c
        }
    }

    private var storage = Storage()

    private mutating func unique() {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
    }

    /// Computers by lower-cased short name (`testserver01`).
    public internal(set) var computers: [String: ComputerAccount] {
        get { storage.computers }
        set { unique(); storage.computers = newValue }
        _modify { unique(); yield &storage.computers }
    }

    /// Users by lower-cased `sAMAccountName`.
    public internal(set) var users: [String: UserAccount] {
        get { storage.users }
        set { unique(); storage.users = newValue }
        _modify { unique(); yield &storage.users }
    }

    /// Groups by lower-cased `sAMAccountName`.
    public internal(set) var groups: [String: Group] {
        get { storage.groups }
        set { unique(); storage.groups = newValue }
        _modify { unique(); yield &storage.groups }
    }

    /// Version stamps for last-writer-wins replication: users and groups by key (`alice`).
    public internal(set) var stamps: [String: ObjectStamp] {
        get { storage.stamps }
        set { unique(); storage.stamps = newValue }
        _modify { unique(); yield &storage.stamps }
    }

    /// Version stamps of computers by short key (`testserver01`).
    public internal(set) var computerStamps: [String: ObjectStamp] {
        get { storage.computerStamps }
        set { unique(); storage.computerStamps = newValue }
        _modify { unique(); yield &storage.computerStamps }
    }

    /// Lower-cased SPN → owning object key, for forest-wide uniqueness checks.
    var spnIndex: [String: String] {
        get { storage.spnIndex }
        set { unique(); storage.spnIndex = newValue }
        _modify { unique(); yield &storage.spnIndex }
    }

    public init() {}

    private enum CodingKeys: String, CodingKey { case computers, users, groups, stamps, computerStamps, spnIndex }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let s = Storage()
        s.computers = try c.decode([String: ComputerAccount].self, forKey: .computers)
        s.users = try c.decode([String: UserAccount].self, forKey: .users)
        s.groups = try c.decode([String: Group].self, forKey: .groups)
        s.stamps = try c.decode([String: ObjectStamp].self, forKey: .stamps)
        s.computerStamps = try c.decode([String: ObjectStamp].self, forKey: .computerStamps)
        s.spnIndex = try c.decode([String: String].self, forKey: .spnIndex)
        storage = s
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(computers, forKey: .computers)
        try c.encode(users, forKey: .users)
        try c.encode(groups, forKey: .groups)
        try c.encode(stamps, forKey: .stamps)
        try c.encode(computerStamps, forKey: .computerStamps)
        try c.encode(spnIndex, forKey: .spnIndex)
    }

    public static func == (a: DirectoryReplica, b: DirectoryReplica) -> Bool {
        a.storage === b.storage || (a.computers == b.computers && a.users == b.users && a.groups == b.groups && a.stamps == b.stamps && a.computerStamps == b.computerStamps && a.spnIndex == b.spnIndex)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(computers.count)
        hasher.combine(users.count)
        hasher.combine(groups.count)
    }

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
