import Directory
import Hosts

extension World {
    /// The seed article's lab: domain contoso.com (CONTOSO) with DC01 and DC02; Hyper-V hosts
    /// TestServer01 and TestServer02 (2012 R2, logon DC DC01, live migration enabled, incoming
    /// network 192.168.10.0/24, CredSSP) and TestServer03 (2016, logon DC DC02); workstation
    /// ADMIN-WS01; users alice (Domain Admins), bob (Hyper-V Operators, a group in each host's
    /// Hyper-V Administrators), carol (sensitive), dave (Protected Users, Hyper-V Operators);
    /// VM1 running on TestServer01; and fabrikam.com (FABRIKAM, DC FAB-DC01, host FabServer01)
    /// trusting contoso.com both ways. Nobody is signed on; no delegation is configured.
    public static func contosoLab() -> World {
        var world = World()
        do {
            try world.buildContosoLab()
        } catch {
            // The lab is built from constants; a failure here is a programming error in this file.
            preconditionFailure("contosoLab: \(error)")
        }
        return world
    }

    private mutating func buildContosoLab() throws(SimulationError) {
        let contoso = Domain(dnsName: "contoso.com", netBIOSName: "CONTOSO")
        let fabrikam = Domain(dnsName: "fabrikam.com", netBIOSName: "FABRIKAM")
        do {
            try directory.addDomain(contoso, controllers: ["DC01", "DC02"])
            try directory.addDomain(fabrikam, controllers: ["FAB-DC01"])
            try directory.addTrust(.twoWay("contoso.com", "fabrikam.com"))
            for (name, sensitive) in [("Administrator", false), ("alice", false), ("bob", false), ("carol", true), ("dave", false)] {
                try directory.seed(.user(.standard(name: name, domain: contoso, sensitive: sensitive)), in: "contoso.com")
            }
            try directory.seed(.user(.standard(name: "erin", domain: fabrikam)), in: "fabrikam.com")
            let c = { (n: String) in PrincipalRef(domain: "contoso.com", name: n) }
            try directory.seed(.group(.standard(name: Group.domainAdmins, domain: contoso, members: [c("Administrator"), c("alice")])), in: "contoso.com")
            try directory.seed(.group(.standard(name: Group.protectedUsers, domain: contoso, members: [c("dave")])), in: "contoso.com")
            try directory.seed(.group(.standard(name: "Hyper-V Operators", domain: contoso, members: [c("bob"), c("dave"), c("Hyper-V Tier2")])), in: "contoso.com")
            try directory.seed(.group(.standard(name: "Hyper-V Tier2", domain: contoso)), in: "contoso.com")
            try directory.seed(.group(.standard(name: Group.domainAdmins, domain: fabrikam,
                                                members: [PrincipalRef(domain: "fabrikam.com", name: "erin")])), in: "fabrikam.com")
            try directory.seed(.group(.standard(name: Group.protectedUsers, domain: fabrikam)), in: "fabrikam.com")
        } catch { throw SimulationError(error) }
        try addHost(name: "TestServer01", domain: "contoso.com", os: .ws2012R2, logonDC: "DC01", addresses: ["192.168.10.11", "10.0.0.11"])
        try addHost(name: "TestServer02", domain: "contoso.com", os: .ws2012R2, logonDC: "DC01", addresses: ["192.168.10.12", "10.0.0.12"])
        try addHost(name: "TestServer03", domain: "contoso.com", os: .ws2016, logonDC: "DC02", addresses: ["192.168.10.13", "10.0.0.13"])
        try addHost(name: "ADMIN-WS01", domain: "contoso.com", os: .ws2012R2, hypervisor: false, logonDC: "DC02", addresses: ["10.0.0.50"])
        try addHost(name: "FabServer01", domain: "fabrikam.com", os: .ws2012R2, logonDC: "FAB-DC01", addresses: ["192.168.10.21"])
        for h in ["TestServer01", "TestServer02", "TestServer03", "FabServer01"] {
            try apply(.enableMigration(host: h))
            try apply(.addMigrationNetwork(host: h, subnet: "192.168.10.0/24", priority: 1))
        }
        for h in ["TestServer01", "TestServer02", "TestServer03"] {
            try apply(.addLocalGroupMember(host: h, group: .hyperVAdministrators, member: "CONTOSO\\Hyper-V Operators"))
        }
        try apply(.addLocalGroupMember(host: "FabServer01", group: .administrators, member: "CONTOSO\\Domain Admins"))
        try apply(.createVM(host: "TestServer01", name: "VM1"))
    }

    /// A large world for benchmarks: one domain `bench.test` (DC01, DC02) with `hostCount` Hyper-V
    /// hosts `HV00000`… (2012 R2, migration enabled, Kerberos, network 10.0.0.0/8, each with one VM
    /// `VM<n>`, each delegating to the next host), user `admin` in Domain Admins signed on to
    /// HV00000 by console. Built by seeding replicas directly, so it is quick even for 10,000 hosts.
    public static func synthetic(hostCount: Int) -> World {
        var world = World()
        let domain = Domain(dnsName: "bench.test", netBIOSName: "BENCH")
        let name = { (i: Int) -> String in
            let s = String(i)
            return "HV" + String(repeating: "0", count: max(0, 5 - s.count)) + s
        }
        do {
            try world.directory.addDomain(domain, controllers: ["DC01", "DC02"])
            try world.directory.seed(.user(.standard(name: "admin", domain: domain)), in: "bench.test")
            try world.directory.seed(.group(.standard(name: Group.domainAdmins, domain: domain,
                                                      members: [PrincipalRef(domain: "bench.test", name: "admin")])), in: "bench.test")
            let n = max(hostCount, 2)
            for i in 0..<n {
                let next = name((i + 1) % n)
                var account = ComputerAccount.standard(name: name(i), domain: domain, operatingSystem: OSGeneration.ws2012R2.productName)
                account.delegation = .constrainedKerberosOnly
                account.allowedToDelegateTo = ["\(ServiceClass.migrationServiceName)/\(next).bench.test",
                                               "\(ServiceClass.migrationServiceName)/\(next)",
                                               "cifs/\(next).bench.test", "cifs/\(next)"]
                try world.directory.seed(.computer(account), in: "bench.test")
                var host = SimulatedHost(name: name(i), domain: "bench.test", os: .ws2012R2, logonDC: i % 2 == 0 ? "DC01" : "DC02",
                                addresses: [IPv4Address(value: 0x0A00_0000 | UInt32(i + 1))])
                host.migration.enabled = true
                host.migration.authenticationType = .kerberos
                if let net = IPv4Subnet("10.0.0.0/8") { host.migration.addNetwork(net, priority: 1) }
                try? host.addVirtualMachine(VirtualMachine(name: "VM\(i)"))
                try world.addHost(host)
            }
            try world.apply(.signOn(user: "admin", host: name(0), kind: .console))
        } catch let e as DirectoryError {
            preconditionFailure("synthetic: \(e)")
        } catch {
            preconditionFailure("synthetic: \(error)")
        }
        return world
    }

    /// The benchmark's standard move: `VM<i>` from `HV<i>` to the next host, started by `admin` on HV00000.
    public static func syntheticMove(_ i: Int, hostCount: Int) -> MoveRequest {
        let n = max(hostCount, 2)
        let name = { (i: Int) -> String in
            let s = String(i)
            return "HV" + String(repeating: "0", count: max(0, 5 - s.count)) + s
        }
        return MoveRequest(vm: "VM\(i % n)", from: name(i % n), to: name((i + 1) % n), user: "admin", startedFrom: name(0))
    }
}

extension World {
    /// Adds one host per computer account that is not a DC and has no host yet: a Hyper-V host
    /// when its `operatingSystem` names a Windows Server generation (with that generation),
    /// otherwise a workstation without the hypervisor. Logon DC: the domain's first DC.
    /// Returns the names added.
    @discardableResult
    public mutating func addHostsForComputers() throws(SimulationError) -> [String] {
        var added: [String] = []
        var copy = self
        for d in directory.domainOrder {
            guard let state = directory.domains[d], let replica = state.replica(), let dc = state.primaryController else { continue }
            for c in replica.computers.values.sorted(by: { $0.key < $1.key }) where !c.isDomainController && copy.hosts[c.key] == nil {
                let os = c.operatingSystem.flatMap(OSGeneration.init(parsing:))
                let server = c.operatingSystem?.lowercased().contains("server") ?? false
                try copy.addHost(SimulatedHost(name: c.shortName, domain: d, os: os ?? .ws2012R2, hypervisorInstalled: server && os != nil,
                                      logonDC: dc))
                added.append(c.shortName)
            }
        }
        self = copy
        return added
    }
}
