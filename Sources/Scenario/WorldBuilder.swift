import Directory
import Hosts
import MigrationRules
import WindowsStatus

/// Builds a `World` from a scenario's directory and hosts, and checks every name its steps use.
///
/// All-or-nothing: the world is only returned when everything resolved; errors point at the
/// entry in the file that is wrong.
enum WorldBuilder {
    static let builtInGroups = [Group.domainAdmins, "Domain Users", Group.protectedUsers]

    static func build(_ doc: ScenarioDocument) throws(ScenarioError) -> World {
        var world = World(directory: try buildDirectory(doc.directory, hosts: doc.hosts, file: doc.file))
        for h in doc.hosts { try addHost(h, to: &world) }
        try checkSteps(doc.steps, in: world, file: doc.file)
        return world
    }

    // MARK: Directory

    static func buildDirectory(_ spec: DirectorySpec, hosts: [HostSpec], file: String) throws(ScenarioError) -> Directory {
        var dir = try baseDirectory(spec, file: file)
        guard let firstDomain = dir.domainOrder.first else {
            throw ScenarioError(file: file, field: "directory", message: "the directory has no domain")
        }
        try seedAccounts(spec, into: &dir, firstDomain: firstDomain, file: file)
        try seedComputers(spec, hosts: hosts, into: &dir, firstDomain: firstDomain)
        return dir
    }

    /// The LDIF file or the inline domains, DCs, trusts and replication delays.
    static func baseDirectory(_ spec: DirectorySpec, file: String) throws(ScenarioError) -> Directory {
        var dir: Directory
        if let ldif = spec.ldif {
            dir = try LDIFSource.load(path: ldif, at: spec.ldifLocation ?? SourceLocation(file: file, field: "directory.ldif"))
        } else {
            dir = Directory()
        }
        for d in spec.domains {
            let domain = Domain(dnsName: d.name, netBIOSName: d.netbios)
            let dcs = spec.dcs.filter { $0.domain.caseInsensitiveCompare(d.name) == .orderedSame }.map(\.name)
            let defaultDC = dir.domainOrder.isEmpty ? "DC01" : "\(domain.netBIOSName)-DC01"
            do { try dir.addDomain(domain, controllers: dcs.isEmpty ? [defaultDC] : dcs) } catch {
                throw d.at.error(error.message)
            }
        }
        for dc in spec.dcs where dir.domainKey(dc.domain) == nil {
            throw dc.at.error("no domain '\(dc.domain)' (declare it under directory.domains)")
        }
        for t in spec.trusts {
            guard let a = dir.domainKey(t.trusting) else { throw t.at.error("no domain '\(t.trusting)'") }
            guard let b = dir.domainKey(t.trusted) else { throw t.at.error("no domain '\(t.trusted)'") }
            guard a != b else { throw t.at.error("a domain cannot trust itself") }
            do { try dir.addTrust(t.twoWay ? .twoWay(a, b) : .oneWay(trusting: a, trusted: b)) } catch {
                throw t.at.error(error.message)
            }
        }
        if let s = spec.replicationDelay { dir.replicationDelay = .seconds(Int64(s)) }
        for l in spec.linkDelays {
            do { try dir.setReplicationDelay(.seconds(Int64(l.seconds)), from: l.from, to: l.to) } catch { throw l.at.error(error.message) }
        }
        return dir
    }

    static func domainKey(_ name: String?, _ at: SourceLocation, in dir: Directory, firstDomain: String) throws(ScenarioError) -> String {
        guard let name else { return firstDomain }
        guard let k = dir.domainKey(name) else { throw at.error("no domain '\(name)'") }
        return k
    }

    /// Groups (built-in ones first), then users and their memberships, all seeded at the end.
    static func seedAccounts(_ spec: DirectorySpec, into dir: inout Directory, firstDomain: String, file: String) throws(ScenarioError) {
        let snapshot = dir
        func domainKey(_ name: String?, _ at: SourceLocation) throws(ScenarioError) -> String {
            try WorldBuilder.domainKey(name, at, in: snapshot, firstDomain: firstDomain)
        }
        var groups: [PrincipalRef: Group] = [:]
        for d in dir.domainOrder {
            guard let state = dir.domain(d), let replica = dir.replica(of: d) else { continue }
            for g in builtInGroups {
                let ref = PrincipalRef(domain: d, name: g)
                groups[ref] = replica.groups[ref.name] ?? .standard(name: g, domain: state.domain)
            }
            for (_, g) in replica.groups { groups[PrincipalRef(domain: d, name: g.key)] = g }
        }
        for g in spec.groups {
            let d = try domainKey(g.domain, g.at)
            guard let state = dir.domain(d) else { continue }
            let ref = PrincipalRef(domain: d, name: g.name)
            if groups[ref] == nil { groups[ref] = .standard(name: g.name, domain: state.domain) }
        }
        var users: [PrincipalRef: UserAccount] = [:]
        for u in spec.users {
            let d = try domainKey(u.domain, u.at)
            guard let state = dir.domain(d) else { continue }
            let ref = PrincipalRef(domain: d, name: u.name)
            guard users[ref] == nil else { throw u.at.error("user '\(u.name)' is declared twice") }
            var account = dir.user(ref) ?? .standard(name: u.name, domain: state.domain)
            if u.sensitive { account.sensitive = true }
            users[ref] = account
            for gname in u.groups {
                let gref = groupRef(gname, defaultDomain: d, dir: dir)
                guard groups[gref] != nil else {
                    throw u.at.error("user '\(u.name)': no group '\(gname)' (declare it under directory.groups)")
                }
                groups[gref]?.members.insert(ref)
            }
        }
        func principalExists(_ ref: PrincipalRef) -> Bool {
            users[ref] != nil || groups[ref] != nil || dir.user(ref) != nil || dir.group(ref) != nil
        }
        for g in spec.groups {
            let d = try domainKey(g.domain, g.at)
            let gref = PrincipalRef(domain: d, name: g.name)
            for m in g.members {
                let mref = groupRef(m, defaultDomain: d, dir: dir)
                guard principalExists(mref) else { throw g.at.error("group '\(g.name)': no user or group '\(m)'") }
                groups[gref]?.members.insert(mref)
            }
        }
        do {
            for (ref, g) in groups.sorted(by: { $0.key < $1.key }) { try dir.seed(.group(g), in: ref.domain) }
            for (ref, u) in users.sorted(by: { $0.key < $1.key }) { try dir.seed(.user(u), in: ref.domain) }
        } catch {
            throw ScenarioError(file: file, field: "directory", message: error.message)
        }
    }

    /// Computer accounts declared (or amended) inline.
    static func seedComputers(_ spec: DirectorySpec, hosts: [HostSpec], into dir: inout Directory, firstDomain: String) throws(ScenarioError) {
        for c in spec.computers {
            let host = hosts.first { $0.name.caseInsensitiveCompare(c.name) == .orderedSame }
            let d = try domainKey(c.domain ?? host?.domain, c.at, in: dir, firstDomain: firstDomain)
            guard let state = dir.domain(d) else { continue }
            var account = dir.computer(c.name, domain: d)
                ?? .standard(name: c.name, domain: state.domain, hyperV: host?.hyperV ?? true,
                             operatingSystem: host.flatMap { OSGeneration(parsing: $0.os) }?.productName)
            if let kind = c.delegation.flatMap(DelegationKind.init(parsing:)) { account.delegation = kind }
            else if !c.allowedToDelegateTo.isEmpty && !account.delegation.isConstrained {
                account.delegation = .constrainedKerberosOnly
            }
            if !c.allowedToDelegateTo.isEmpty { account.allowedToDelegateTo = c.allowedToDelegateTo }
            do { try dir.seed(.computer(account), in: d) } catch { throw c.at.error(error.message) }
        }
    }

    static func groupRef(_ text: String, defaultDomain: String, dir: Directory) -> PrincipalRef {
        if let bs = text.firstIndex(of: "\\"), let d = dir.domainKey(String(text[..<bs])) {
            return PrincipalRef(domain: d, name: String(text[text.index(after: bs)...]))
        }
        if let at = text.lastIndex(of: "@"), let d = dir.domainKey(String(text[text.index(after: at)...])) {
            return PrincipalRef(domain: d, name: String(text[..<at]))
        }
        return PrincipalRef(domain: defaultDomain, name: text)
    }

    // MARK: Hosts

    /// The host's generation: `os` when given, else its account's `operatingSystem` (an LDIF
    /// export), else 2012 R2. A given `os` that contradicts the account's is an error.
    static func hostOS(_ h: HostSpec, domain: String, directory: Directory) throws(ScenarioError) -> OSGeneration {
        guard let given = OSGeneration(parsing: h.os) else { throw h.at.error("unknown os '\(h.os)'") }
        guard let text = directory.computer(h.name, domain: domain)?.operatingSystem,
              let recorded = OSGeneration(parsing: text) else { return given }
        if !h.osGiven { return recorded }
        guard recorded == given else {
            throw h.at.error("os: \(h.os) contradicts the computer account's operatingSystem '\(text)' (\(recorded.rawValue)); leave os out or make them agree")
        }
        return given
    }

    static func addHost(_ h: HostSpec, to world: inout World) throws(ScenarioError) {
        guard let firstDomain = world.directory.domainOrder.first else { throw h.at.error("the directory has no domain") }
        guard world.host(h.name) == nil else { throw h.at.error("host '\(h.name)' is declared twice") }
        let domain: String
        if let d = h.domain {
            guard let k = world.directory.domainKey(d) else { throw h.at.error("no domain '\(d)'") }
            domain = k
        } else {
            domain = firstDomain
        }
        if let dc = h.logonDC, world.directory.domainOfController(dc) != domain {
            if world.directory.domainOfController(dc) == nil { throw h.at.error("logon-dc: no DC named '\(dc)'") }
            throw h.at.error("logon-dc: \(dc) is not a DC of \(domain)")
        }
        let os = try hostOS(h, domain: domain, directory: world.directory)
        for a in h.addresses where IPv4Address(a) == nil { throw h.at.error("'\(a)' is not an IPv4 address") }
        do {
            try world.addHost(name: h.name, domain: domain, os: os, hypervisor: h.hyperV, logonDC: h.logonDC,
                              addresses: h.addresses)
        } catch {
            throw h.at.error(error.message)
        }
        // Resolve local-group members and VMs before touching the host.
        var members: [(LocalGroup, PrincipalRef)] = []
        for (group, names) in h.localGroups.sorted(by: { $0.key < $1.key }) {
            guard let lg = LocalGroup(parsing: group) else {
                throw h.at.error("local-groups: '\(group)' is not Administrators or Hyper-V Administrators")
            }
            for n in names {
                guard let ref = world.directory.resolve(n, defaultDomain: domain) else {
                    throw h.at.error("local-groups.\(group): no domain user or group '\(n)'")
                }
                members.append((lg, ref))
            }
        }
        for vm in h.vms {
            if let other = world.allHosts.first(where: { $0.virtualMachine(vm) != nil }) {
                throw h.at.error("VM '\(vm)' is already on \(other.name)")
            }
        }
        let settings = h.settings
        let credentialGuard = h.credentialGuard
        do {
            try world.updateHost(h.name) { (host: inout SimulatedHost) throws(HostError) in
                for (lg, ref) in members { host.localGroups[lg, default: []].insert(ref) }
                for vm in h.vms { try host.addVirtualMachine(VirtualMachine(name: vm)) }
                if let v = credentialGuard { host.credentialGuard = v }
                try host.updateMigrationSettings { (m: inout MigrationSettings) throws(HostError) in
                    if let v = settings.migrationEnabled { m.enabled = v }
                    if let v = settings.maximumVirtualMachineMigrations { m.maximumMigrations = v }
                    if let v = settings.useAnyNetworkForMigration { m.useAnyNetwork = v }
                    if let v = settings.authenticationType { m.authenticationType = v }
                    if let v = settings.performanceOption { m.performanceOption = v }
                    for n in settings.migrationNetworks ?? [] {
                        guard let s = IPv4Subnet(n) else {
                            throw HostError(status: .invalidArgument, message: "'\(n)' is not an IPv4 subnet")
                        }
                        m.addNetwork(s)
                    }
                }
            }
        } catch {
            throw (settings.at ?? h.at).error(error.message)
        }
    }

    // MARK: Steps

    /// Checks that every host, DC, user and VM a step names exists.
    static func checkSteps(_ steps: [ScenarioStep], in world: World, file: String) throws(ScenarioError) {
        // VMs that `new-vm` steps create count for later moves that leave out `from`.
        var created: Set<String> = []
        for (i, step) in steps.enumerated() {
            let at = step.at ?? SourceLocation(file: file, field: "steps[\(i)]")
            try check(step.action, in: world, at: at, createdVMs: created)
            if case let .newVM(_, name) = step.action { created.insert(name.lowercased()) }
        }
    }

    static func check(_ action: ScenarioAction, in world: World, at: SourceLocation,
                      createdVMs: Set<String> = []) throws(ScenarioError) {
        func host(_ name: String) throws(ScenarioError) {
            guard world.host(name) != nil else {
                throw at.error("unknown host '\(name)'; hosts: \(world.allHosts.map(\.name).joined(separator: ", "))")
            }
        }
        func user(_ name: String) throws(ScenarioError) {
            guard let ref = world.directory.resolve(name), world.directory.user(ref) != nil else {
                throw at.error("unknown user '\(name)'")
            }
        }
        func dc(_ name: String) throws(ScenarioError) {
            guard world.directory.domainOfController(name) != nil else { throw at.error("unknown DC '\(name)'") }
        }
        func vm(_ name: String) throws(ScenarioError) {
            guard createdVMs.contains(name.lowercased()) || world.allHosts.contains(where: { $0.virtualMachine(name) != nil }) else {
                throw at.error("unknown VM '\(name)' (declare it under a host's vms, or create it with new-vm first)")
            }
        }
        switch action {
        case let .signOn(u, h, _, from):
            try user(u); try host(h)
            if let from { try host(from) }
        case let .signOff(u, h): try user(u); try host(h)
        case let .enableMigration(h), let .disableMigration(h), let .purgeTickets(h), let .restart(h): try host(h)
        case let .setHost(h, _), let .newVM(h, _): try host(h)
        case let .localGroupMember(h, _, member, _):
            try host(h)
            guard world.directory.resolve(member, defaultDomain: world.host(h)?.domain) != nil else {
                throw at.error("unknown domain user or group '\(member)'")
            }
        case let .addMigrationNetwork(h, _, _), let .removeMigrationNetwork(h, _), let .setMigrationNetwork(h, _, _, _):
            try host(h)
        case let .delegation(c):
            try dc(c.dc); try user(c.actingUser)
            guard world.directory.domainOrder.contains(where: { world.directory.computer(c.computer, domain: $0) != nil }) else {
                throw at.error("unknown computer account '\(c.computer)'")
            }
        case let .replicate(from, to):
            if let from { try dc(from) }
            if let to { try dc(to) }
        case .advanceClock: break
        case let .domainGroupMember(g, member, _, d):
            guard let ref = world.directory.resolve(g), world.directory.group(ref) != nil else { throw at.error("unknown domain group '\(g)'") }
            guard world.directory.resolve(member) != nil else { throw at.error("unknown domain user or group '\(member)'") }
            if let d { try dc(d) }
        case let .setSensitive(u, _, d):
            try user(u)
            if let d { try dc(d) }
        case let .setCredentialGuard(h, _): try host(h)
        case let .move(m): try checkMove(m)
        case let .moves(list): for m in list { try checkMove(m) }
        }
        func checkMove(_ m: MoveSpec) throws(ScenarioError) {
            try user(m.user); try host(m.destination)
            if m.source == nil { try vm(m.vm) }
            if let s = m.source { try host(s) }
            if let on = m.startedOn { try host(on) }
        }
    }
}
