import Directory
import Testing
import WindowsStatus

@Suite("Directory: replication, P2, SPNs, membership")
struct DirectoryTests {
    static let contoso = Domain(dnsName: "contoso.com", netBIOSName: "CONTOSO")

    static func directory(delay: SimDuration? = nil) throws -> Directory {
        var d = Directory(replicationDelay: delay)
        try d.addDomain(contoso, controllers: ["DC01", "DC02"])
        for u in ["alice", "bob"] { try d.seed(.user(.standard(name: u, domain: contoso)), in: "contoso.com") }
        try d.seed(.group(.standard(name: "Tier0", domain: contoso, members: [PrincipalRef(domain: "contoso.com", name: "alice")])), in: "contoso.com")
        try d.seed(.group(.standard(name: Group.domainAdmins, domain: contoso, members: [PrincipalRef(domain: "contoso.com", name: "tier0")])), in: "contoso.com")
        try d.seed(.computer(.standard(name: "TestServer01", domain: contoso)), in: "contoso.com")
        try d.seed(.computer(.standard(name: "TestServer02", domain: contoso)), in: "contoso.com")
        return d
    }

    static let alice = PrincipalRef(domain: "contoso.com", name: "alice")
    static let bob = PrincipalRef(domain: "contoso.com", name: "bob")
    static let service = "Microsoft Virtual System Migration Service/TestServer02.contoso.com"

    @Test("A change written on one DC reaches the other only by replication")
    func explicitReplication() throws {
        var d = try Self.directory()
        try d.addDelegationServices([Self.service], to: "TestServer01", by: Self.alice, on: "DC01", at: SimTime(seconds: 5))
        #expect(d.computer("TestServer01", on: "DC01")?.allowedToDelegateTo == [Self.service])
        #expect(d.computer("TestServer01", on: "DC02")?.allowedToDelegateTo == [])
        #expect(d.hasPendingChanges(for: "DC02"))
        try d.replicate(from: "DC01", to: "DC02")
        #expect(d.computer("TestServer01", on: "DC02")?.allowedToDelegateTo == [Self.service])
        #expect(!d.hasPendingChanges(for: "DC02"))
        #expect(d.domain("contoso.com")?.log.isEmpty == true, "the log is pruned once every DC has the change")
    }

    @Test("Delayed replication applies changes when the clock passes their due time")
    func delayedReplication() throws {
        var d = try Self.directory(delay: .minutes(15))
        try d.addDelegationServices([Self.service], to: "TestServer01", by: Self.alice, on: "DC02", at: SimTime(seconds: 0))
        d.deliverDue(now: SimTime(seconds: 899))
        #expect(d.computer("TestServer01", on: "DC01")?.allowedToDelegateTo == [])
        d.deliverDue(now: SimTime(seconds: 900))
        #expect(d.computer("TestServer01", on: "DC01")?.allowedToDelegateTo == [Self.service])
    }

    @Test("Concurrent writes on two DCs converge deterministically (higher version, then later time)")
    func conflicts() throws {
        var d = try Self.directory()
        try d.addDelegationServices(["cifs/TestServer02"], to: "TestServer01", by: Self.alice, on: "DC01", at: SimTime(seconds: 10))
        try d.addDelegationServices(["cifs/TestServer03"], to: "TestServer01", by: Self.alice, on: "DC02", at: SimTime(seconds: 20))
        d.replicateAll()
        let one = d.computer("TestServer01", on: "DC01")?.allowedToDelegateTo
        #expect(one == ["cifs/TestServer03"])
        #expect(d.computer("TestServer01", on: "DC02")?.allowedToDelegateTo == one)
    }

    @Test("P2: a non-Domain-Admin is refused with 0x80072098 and nothing changes")
    func p2Refused() throws {
        var d = try Self.directory()
        let before = d
        do {
            try d.setDelegation(of: "TestServer01", kind: .constrainedAnyProtocol, services: [Self.service], by: Self.bob, on: "DC01", at: .zero)
            Issue.record("bob may not change delegation")
        } catch {
            #expect(error.status == .dsInsufficientAccessRights)
            #expect(error.status.hex == "0x80072098")
            #expect(error.rule == "P2")
        }
        #expect(d == before)
    }

    @Test("P2: a Domain Admin through a nested group may change delegation")
    func p2Allowed() throws {
        var d = try Self.directory()
        #expect(d.isDomainAdmin(Self.alice, of: "CONTOSO"))
        try d.setDelegation(of: "TestServer01", kind: .constrainedAnyProtocol, services: [Self.service], by: Self.alice, on: "DC01", at: .zero)
        let c = try #require(d.computer("TestServer01", on: "DC01"))
        #expect(c.delegation == .constrainedAnyProtocol)
        #expect(c.userAccountControl & 0x100_0000 != 0)
    }

    @Test("A duplicate SPN is refused as AD refuses it, and nothing changes")
    func spnDuplicate() throws {
        var d = try Self.directory()
        let before = d
        var dup = ComputerAccount.standard(name: "TestServer09", domain: Self.contoso)
        dup.servicePrincipalNames.append("HOST/TestServer01.contoso.com")
        #expect(throws: DirectoryError.self) { try d.write(.computer(dup), in: "contoso.com", on: "DC02", at: .zero) }
        do { try d.seed(.computer(dup), in: "contoso.com") } catch {
            #expect(error.status == .dsSPNNotUniqueInForest)
            #expect(error.attribute == "servicePrincipalName")
        }
        #expect(d == before)
        // Re-writing the owner with its own SPNs is fine.
        var own = try #require(d.computer("TestServer01"))
        own.disabled = true
        try d.write(.computer(own), in: "contoso.com", at: .zero)
    }

    @Test("Transitive membership, Protected Users and sensitive accounts")
    func membership() throws {
        var d = try Self.directory()
        #expect(d.groups(of: Self.alice).map(\.name) == ["domain admins", "tier0"])
        #expect(!d.isMember(Self.bob, of: PrincipalRef(domain: "contoso.com", name: "Domain Admins")))
        try d.seed(.group(.standard(name: Group.protectedUsers, domain: Self.contoso)), in: "contoso.com")
        #expect(!d.cannotBeDelegated(Self.bob))
        try d.addMember(Self.bob, to: PrincipalRef(domain: "contoso.com", name: Group.protectedUsers), at: .zero)
        #expect(d.cannotBeDelegated(Self.bob))
        try d.setSensitive(Self.alice, true, at: .zero)
        #expect(d.cannotBeDelegated(Self.alice))
        #expect(d.resolve("CONTOSO\\Alice") == Self.alice)
        #expect(d.resolve("alice@contoso.com") == Self.alice)
        #expect(d.resolve("nobody") == nil)
    }

    @Test("Trusts: direction as AD's trustDirection says, not transitive")
    func trusts() throws {
        var d = try Self.directory()
        try d.addDomain(Domain(dnsName: "fabrikam.com"), controllers: ["FAB-DC01"])
        try d.addDomain(Domain(dnsName: "northwind.com"), controllers: ["NW-DC01"])
        #expect(!d.trusts("contoso.com", "fabrikam.com"))
        try d.addTrust(Trust(domain: "contoso.com", partner: "fabrikam.com", direction: .inbound))
        #expect(d.trusts("fabrikam.com", "contoso.com"))
        #expect(!d.trusts("contoso.com", "fabrikam.com"))
        try d.addTrust(.twoWay("fabrikam.com", "northwind.com"))
        #expect(!d.trusts("contoso.com", "northwind.com"))
        #expect(d.domain("FABRIKAM")?.domain.dnsName == "fabrikam.com")
    }
}
