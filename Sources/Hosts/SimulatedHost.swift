import Directory
import WindowsStatus

/// A host's local groups that grant the right to migrate (rule P1).
public enum LocalGroup: String, Sendable, Hashable, Codable, CaseIterable, CodingKeyRepresentable {
    case administrators = "Administrators"
    case hyperVAdministrators = "Hyper-V Administrators"

    public init?(parsing text: String) {
        switch text.lowercased().replacingOccurrences(of: " ", with: "").replacingOccurrences(of: "-", with: "") {
        case "administrators", "admins": self = .administrators
        case "hypervadministrators", "hypervadmins": self = .hyperVAdministrators
        default: return nil
        }
    }
}

/// A domain-joined machine: a Hyper-V server, or (without the role) a management workstation.
public struct SimulatedHost: Sendable, Hashable, Codable {
    /// Copy-on-write storage: copying a host (as every lookup does) costs one reference count.
    final class Storage: @unchecked Sendable {
        var name: String
        var domain: String
        var os: OSGeneration
        var hypervisorInstalled: Bool
        var logonDC: String
        var localGroups: [LocalGroup: Set<PrincipalRef>]
        var virtualMachines: [String: VirtualMachine]
        var credentialGuard: Bool
        var addresses: [IPv4Address]
        var migration: MigrationSettings
        var tickets: TicketCache
        var signOns: [SignOn]
        /// `ServiceTarget.shortKey(name)`, kept current by `name`'s setter.
        var key: String
        init(name: String, domain: String, os: OSGeneration, hypervisorInstalled: Bool, logonDC: String, localGroups: [LocalGroup: Set<PrincipalRef>], virtualMachines: [String: VirtualMachine], credentialGuard: Bool, addresses: [IPv4Address], migration: MigrationSettings, tickets: TicketCache, signOns: [SignOn]) {
            self.name = name
            self.domain = domain
            self.os = os
            self.hypervisorInstalled = hypervisorInstalled
            self.logonDC = logonDC
            self.localGroups = localGroups
            self.virtualMachines = virtualMachines
            self.credentialGuard = credentialGuard
            self.addresses = addresses
            self.migration = migration
            self.tickets = tickets
            self.signOns = signOns
            self.key = ServiceTarget.shortKey(name)
        }
        func copy() -> Storage { Storage(name: name, domain: domain, os: os, hypervisorInstalled: hypervisorInstalled, logonDC: logonDC, localGroups: localGroups, virtualMachines: virtualMachines, credentialGuard: credentialGuard, addresses: addresses, migration: migration, tickets: tickets, signOns: signOns) }
    }

    private var storage: Storage

    private mutating func unique() {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
    }

    /// Short name as configured, `TestServer01`.
    public var name: String {
        get { storage.name }
        set { unique(); storage.name = newValue; storage.key = ServiceTarget.shortKey(newValue) }
    }
    /// Lower-cased DNS name of the domain it is joined to.
    public var domain: String {
        get { storage.domain }
        set { unique(); storage.domain = newValue }
        _modify { unique(); yield &storage.domain }
    }
    public var os: OSGeneration {
        get { storage.os }
        set { unique(); storage.os = newValue }
        _modify { unique(); yield &storage.os }
    }
    public var hypervisorInstalled: Bool {
        get { storage.hypervisorInstalled }
        set { unique(); storage.hypervisorInstalled = newValue }
        _modify { unique(); yield &storage.hypervisorInstalled }
    }
    /// The DC it authenticates against (its logon server), lower-cased.
    public var logonDC: String {
        get { storage.logonDC }
        set { unique(); storage.logonDC = newValue }
        _modify { unique(); yield &storage.logonDC }
    }
    /// Members of local groups (domain users or domain groups).
    public var localGroups: [LocalGroup: Set<PrincipalRef>] {
        get { storage.localGroups }
        set { unique(); storage.localGroups = newValue }
        _modify { unique(); yield &storage.localGroups }
    }
    /// Virtual machines by lower-cased name.
    public var virtualMachines: [String: VirtualMachine] {
        get { storage.virtualMachines }
        set { unique(); storage.virtualMachines = newValue }
        _modify { unique(); yield &storage.virtualMachines }
    }
    public var credentialGuard: Bool {
        get { storage.credentialGuard }
        set { unique(); storage.credentialGuard = newValue }
        _modify { unique(); yield &storage.credentialGuard }
    }
    public var addresses: [IPv4Address] {
        get { storage.addresses }
        set { unique(); storage.addresses = newValue }
        _modify { unique(); yield &storage.addresses }
    }
    public var migration: MigrationSettings {
        get { storage.migration }
        set { unique(); storage.migration = newValue }
        _modify { unique(); yield &storage.migration }
    }
    /// The host's own Kerberos tickets.
    public var tickets: TicketCache {
        get { storage.tickets }
        set { unique(); storage.tickets = newValue }
        _modify { unique(); yield &storage.tickets }
    }
    /// Users signed on now.
    public var signOns: [SignOn] {
        get { storage.signOns }
        set { unique(); storage.signOns = newValue }
        _modify { unique(); yield &storage.signOns }
    }

    /// A host with the defaults of docs/rules.md: migration off, CredSSP, 2 simultaneous migrations,
    /// no networks, Credential Guard on from 2025, Domain Admins of its domain in local Administrators.
    public init(name: String, domain: String, os: OSGeneration = .ws2012R2, hypervisorInstalled: Bool = true,
                logonDC: String, addresses: [IPv4Address] = []) {
        let name_ = name
        let domain_ = domain.lowercased()
        let os_ = os
        let hypervisorInstalled_ = hypervisorInstalled
        let logonDC_ = logonDC.lowercased()
        let localGroups_: [LocalGroup: Set<PrincipalRef>] = [.administrators: [PrincipalRef(domain: domain, name: Group.domainAdmins)],
                            .hyperVAdministrators: []]
        let virtualMachines_: [String: VirtualMachine] = [:]
        let credentialGuard_ = os.credentialGuardByDefault
        let addresses_ = addresses
        let migration_ = MigrationSettings(os: os)
        let tickets_ = TicketCache()
        let signOns_: [SignOn] = []
        storage = Storage(name: name_, domain: domain_, os: os_, hypervisorInstalled: hypervisorInstalled_, logonDC: logonDC_, localGroups: localGroups_, virtualMachines: virtualMachines_, credentialGuard: credentialGuard_, addresses: addresses_, migration: migration_, tickets: tickets_, signOns: signOns_)
    }

    private enum CodingKeys: String, CodingKey {
        case name, domain, os, hypervisorInstalled, logonDC, localGroups, virtualMachines, credentialGuard,
             addresses, migration, tickets, signOns
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        storage = Storage(name: try c.decode(String.self, forKey: .name), domain: try c.decode(String.self, forKey: .domain), os: try c.decode(OSGeneration.self, forKey: .os), hypervisorInstalled: try c.decode(Bool.self, forKey: .hypervisorInstalled), logonDC: try c.decode(String.self, forKey: .logonDC), localGroups: try c.decode([LocalGroup: Set<PrincipalRef>].self, forKey: .localGroups), virtualMachines: try c.decode([String: VirtualMachine].self, forKey: .virtualMachines), credentialGuard: try c.decode(Bool.self, forKey: .credentialGuard), addresses: try c.decode([IPv4Address].self, forKey: .addresses), migration: try c.decode(MigrationSettings.self, forKey: .migration), tickets: try c.decode(TicketCache.self, forKey: .tickets), signOns: try c.decode([SignOn].self, forKey: .signOns))
    }

    public static func == (a: SimulatedHost, b: SimulatedHost) -> Bool {
        if a.storage === b.storage { return true }
        return a.name == b.name && a.domain == b.domain && a.os == b.os && a.hypervisorInstalled == b.hypervisorInstalled && a.logonDC == b.logonDC && a.localGroups == b.localGroups && a.virtualMachines == b.virtualMachines && a.credentialGuard == b.credentialGuard && a.addresses == b.addresses && a.migration == b.migration && a.tickets == b.tickets && a.signOns == b.signOns
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(name)
        hasher.combine(domain)
        hasher.combine(virtualMachines.count)
    }

    /// Sets are written sorted, so equal hosts encode to equal JSON.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(domain, forKey: .domain)
        try c.encode(os, forKey: .os)
        try c.encode(hypervisorInstalled, forKey: .hypervisorInstalled)
        try c.encode(logonDC, forKey: .logonDC)
        var groups: [String: [PrincipalRef]] = [:]
        for (g, members) in localGroups { groups[g.rawValue] = members.sorted() }
        try c.encode(groups, forKey: .localGroups)
        try c.encode(virtualMachines, forKey: .virtualMachines)
        try c.encode(credentialGuard, forKey: .credentialGuard)
        try c.encode(addresses, forKey: .addresses)
        try c.encode(migration, forKey: .migration)
        try c.encode(tickets, forKey: .tickets)
        try c.encode(signOns, forKey: .signOns)
    }

    /// Lower-cased short name, the key hosts are filed under.
    public var key: String { storage.key }

    /// `TestServer01.contoso.com`.
    public var fqdn: String { "\(name).\(domain)" }

    /// The VM named `name` (case-insensitive).
    public func virtualMachine(_ name: String) -> VirtualMachine? { virtualMachines[name.lowercased()] }

    /// The sessions of `user` on this host.
    public func signOns(of user: PrincipalRef) -> [SignOn] { signOns.filter { $0.user == user } }

    /// Signs a user on (a user may hold several sessions of different kinds).
    public mutating func signOn(_ signOn: SignOn) {
        if !signOns.contains(where: { $0.user == signOn.user && $0.kind == signOn.kind && $0.from == signOn.from }) {
            signOns.append(signOn)
        }
    }

    /// Signs a user off: the sessions of `kind`, or all of them when nil. Returns how many ended.
    @discardableResult
    public mutating func signOff(_ user: PrincipalRef, kind: SignOnKind? = nil) -> Int {
        let before = signOns.count
        signOns.removeAll { $0.user == user && (kind == nil || $0.kind == kind) }
        return before - signOns.count
    }

    /// Restart: sessions end and the ticket cache is purged.
    public mutating func restart() {
        signOns.removeAll()
        tickets.purge()
    }

    /// Adds a VM; throws when one with that name exists.
    public mutating func addVirtualMachine(_ vm: VirtualMachine) throws(HostError) {
        if let problem = VirtualMachine.nameProblem(vm.name) {
            throw HostError(status: .invalidArgument, message: problem)
        }
        guard virtualMachines[vm.key] == nil else {
            throw HostError(status: .dsObjectExists, message: "A virtual machine named \(vm.name) already exists on \(name)")
        }
        virtualMachines[vm.key] = vm
    }

    /// Applies a settings change after validating it for this host's generation; on error nothing changes.
    public mutating func updateMigrationSettings(_ change: (inout MigrationSettings) throws(HostError) -> Void) throws(HostError) {
        var s = migration
        try change(&s)
        try s.validate(for: os)
        migration = s
    }
}
