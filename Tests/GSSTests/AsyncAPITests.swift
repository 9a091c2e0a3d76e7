import GSS
import TestSupport
import Testing
import TestRealm

/// The `async` variants run blocking calls off the cooperative pool; contexts move in and out.
@Suite("GSS async variants")
struct AsyncAPITests {
    @Test("password credential, S4U2Self and both context sides with async calls")
    func asyncCalls() async throws {
        let service = try await GSSFixture.service("s4u", attributes: PrincipalAttributes(okToAuthAsDelegate: true))
        let user = try await GSSFixture.user()
        let realm = try await GSSFixture.realm()
        let credential = try await GSSCredential.acquire(name: GSSName(principal: user.principal), password: user.password)
        var initiator = GSSInitiatorContext(target: try service.targetName(), credential: credential)
        var acceptor = GSSAcceptorContext(credential: try service.acceptorCredential())
        try await InMemoryEstablishment.establish(&initiator, &acceptor)
        #expect(initiator.isComplete && acceptor.isComplete)
        #expect(acceptor.peerName?.description == user.principal)
        #expect(try acceptor.unwrap(try initiator.wrap([1, 2, 3])).message == [1, 2, 3])

        let serviceCredential = try GSSCredential.acquire(
            name: GSSName(principal: service.principal), usage: .both,
            store: GSSCredentialStore(ccache: realm.newCCacheName(), keytab: service.keytab, clientKeytab: service.keytab))
        let impersonated = try await serviceCredential.impersonate(GSSName(principal: user.principal))
        #expect(try impersonated.name.description == user.principal)

        let error = await asyncResult { try await GSSCredential.acquire(name: GSSName(principal: user.principal),
                                                                       password: "wrong") }
        guard case .failure(let failure as GSSError) = error else {
            Issue.record("a wrong password must fail with a GSSError, got \(error)")
            return
        }
        #expect(failure.windowsStatus == .logonDenied)
    }
}
