import Directory
import MigrationRules
import RealmProvisioning
import Testing

@Suite("What the KDC must hold for a world (no KDC)")
struct RealmModelTests {
    @Test("users, hosts' three principals, non-forwardable users, protocol transition and delegation lists")
    func desiredState() throws {
        var world = World.contosoLab()
        let model = RealmModel.desired(for: world)
        #expect(model.realm == "CONTOSO.COM")
        #expect(model.domains == ["contoso.com"])
        #expect(model.principals["bob"]?.forwardable == true)
        #expect(model.principals["carol"]?.forwardable == false)   // sensitive
        #expect(model.principals["dave"]?.forwardable == false)    // Protected Users
        #expect(model.principals["erin"] == nil)                   // fabrikam: another realm
        for p in ["host/testserver01.contoso.com", "cifs/testserver01.contoso.com",
                  "Microsoft Virtual System Migration Service/testserver01.contoso.com"] {
            #expect(model.principals[p] != nil, "\(p)")
        }
        #expect(model.principals["host/fabserver01.fabrikam.com"] == nil)
        #expect(model.delegation.isEmpty)

        try world.apply(.addDelegation(computer: "TestServer01", services: ["cifs/TestServer02.contoso.com"], by: "alice", dc: "DC01"))
        try world.apply(.setDelegationKind(computer: "TestServer01", kind: .constrainedAnyProtocol, by: "alice", dc: "DC01"))
        #expect(RealmModel.desired(for: world).delegation.isEmpty, "the boot ticket still holds (A3)")
        try world.apply(.restartHost(host: "TestServer01"))
        let after = RealmModel.desired(for: world)
        #expect(after.delegation["host/testserver01.contoso.com"] == ["cifs/testserver02.contoso.com@CONTOSO.COM"])
        #expect(after.principals["host/testserver01.contoso.com"]?.okToAuthAsDelegate == true)
        #expect(after.principals["host/testserver02.contoso.com"]?.okToAuthAsDelegate == false)
    }
}
