import GSS
import Testing

@Suite("GSS names and credentials")
struct GSSNameTests {
    @Test("host-based and principal names with spaces: display, compare, canonicalize, export")
    func names() async throws {
        let realm = try await GSSFixture.realm()
        let hostBased = try GSSName(service: "Microsoft Virtual System Migration Service", host: "hostb.test")
        #expect(hostBased.description == "Microsoft Virtual System Migration Service@hostb.test")
        let principal = try GSSName(principal: "Microsoft Virtual System Migration Service/hostb.test@\(realm.name)")
        #expect(principal.description == "Microsoft Virtual System Migration Service/hostb.test@\(realm.name)")
        let canonical = try hostBased.canonicalized()
        #expect(canonical.description == principal.description)
        #expect(try canonical.isSame(as: principal))
        #expect(try !canonical.isSame(as: GSSName(principal: "host/hostb.test@\(realm.name)")))
        let exported = try canonical.export()
        let imported = try GSSName(exported: exported)
        #expect(try imported.isSame(as: principal))
        #expect(try imported.export() == exported)
    }

    @Test("a malformed exported name is a typed error")
    func badExport() {
        let error = gssError { () throws(GSSError) in _ = try GSSName(exported: [0x04, 0x01, 0xFF]) }
        #expect(error != nil)
        #expect(error?.operation == .importName)
    }

    @Test("credential inquiry: name, lifetime, usage; keytab and ccache stores stay apart")
    func credentials() async throws {
        let service = try await GSSFixture.service()
        let user = try await GSSFixture.user()
        let initiator = try user.credential()
        let info = try initiator.inquire()
        #expect(info.name.description == user.principal)
        #expect((info.lifetime ?? .zero) > .seconds(3000))
        #expect(info.usage == .initiate)
        let acceptor = try service.acceptorCredential()
        #expect(try acceptor.name.description == service.principal)
        #expect(try acceptor.usage == .accept)
        // Password credential, stored into a fresh ccache, then read back from there.
        let realm = try await GSSFixture.realm()
        try await onThread {
            let fromPassword = try GSSCredential.acquire(name: GSSName(principal: user.principal), password: user.password)
            let cache = realm.newCCacheName()
            try fromPassword.store(into: GSSCredentialStore(ccache: cache))
            let reread = try GSSCredential.acquire(store: GSSCredentialStore(ccache: cache))
            #expect(try reread.name.description == user.principal)
        }
    }
}
