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
public struct Host: Sendable, Hashable, Codable {
    /// Short name as configured, `TestServer01`.
    public var name: String
    /// Lower-cased DNS name of the domain it is joined to.
    public var domain: String
    public var os: OSGeneration
    public var hypervisorInstalled: Bool
    /// The DC it authenticates against (its logon server), lower-cased.
    public var logonDC: String
    /// Members of local groups (domain users or domain groups).
    public var localGroups: [LocalGroup: Set<PrincipalRef>]
    /// Virtual machines by lower-cased name.
    public var virtualMachines: [String: VirtualMachine]
    public var credentialGuard: Bool
    public var addresses: [IPv4Address]
    public var migration: MigrationSettings
    /// The host's own Kerberos tickets.
    public var tickets: TicketCache
    /// Users signed on now.
    public var signOns: [SignOn]

    /// A host with SEMANTICS.md's defaults: migration off, CredSSP, 2 simultaneous migrations,
    /// no networks, Credential Guard on from 2025, Domain Admins of its domain in local Administrators.
    public init(name: String, domain: String, os: OSGeneration = .ws2012R2, hypervisorInstalled: Bool = true,
                logonDC: String, addresses: [IPv4Address] = []) {
        self.name = name
        self.domain = domain.lowercased()
        self.os = os
        self.hypervisorInstalled = hypervisorInstalled
        self.logonDC = logonDC.lowercased()
        self.localGroups = [.administrators: [PrincipalRef(domain: domain, name: Group.domainAdmins)],
                            .hyperVAdministrators: []]
        self.virtualMachines = [:]
        self.credentialGuard = os.credentialGuardByDefault
        self.addresses = addresses
        self.migration = MigrationSettings(os: os)
        self.tickets = TicketCache()
        self.signOns = []
    }

    private enum CodingKeys: String, CodingKey {
        case name, domain, os, hypervisorInstalled, logonDC, localGroups, virtualMachines, credentialGuard,
             addresses, migration, tickets, signOns
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
    public var key: String { ServiceTarget.shortKey(name) }

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
