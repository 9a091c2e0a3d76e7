import Foundation
import GSS
import TestSupport
import Testing
import TestRealm

/// Proofs 3 and 4: protocol transition (S4U2Self) and delegation, against the real KDC (DB2 back
/// end, which refuses every S4U2Proxy request).
@Suite("GSS S4U2Self and delegation")
struct DelegationTests {
    /// A service credential of usage `both` that can get its own TGT from its keytab.
    static func serviceCredential(_ service: GSSFixture.Service) async throws -> GSSCredential {
        let realm = try await GSSFixture.realm()
        let store = GSSCredentialStore(ccache: realm.newCCacheName(), keytab: service.keytab,
                                       clientKeytab: service.keytab)
        return try GSSCredential.acquire(name: GSSName(principal: service.principal), usage: .both, store: store)
    }

    @Test("S4U2Self: a keytab-backed service gets a credential for a user and authenticates to itself as that user")
    func s4u2self() async throws {
        let service = try await GSSFixture.service("s4u", attributes: PrincipalAttributes(okToAuthAsDelegate: true))
        let user = try await GSSFixture.user()
        let serviceCredential = try await Self.serviceCredential(service)
        try await onThread {
            let impersonated = try serviceCredential.impersonate(GSSName(principal: user.principal))
            #expect(try impersonated.name.description == user.principal)
            var initiator = GSSInitiatorContext(target: try service.targetName(), credential: impersonated)
            var acceptor = GSSAcceptorContext(credential: try service.acceptorCredential())
            try InMemoryEstablishment.establish(&initiator, &acceptor)
            #expect(acceptor.peerName?.description == user.principal)
            #expect(try initiator.inquire().acceptor?.description == service.principal)
        }
    }

    @Test("S4U2Self then S4U2Proxy to another service: refused by the KDC → 0x8009030E")
    func s4u2proxyRefused() async throws {
        let service = try await GSSFixture.service("s4u", attributes: PrincipalAttributes(okToAuthAsDelegate: true))
        let other = try await GSSFixture.service("Microsoft Virtual System Migration Service")
        let user = try await GSSFixture.user()
        let serviceCredential = try await Self.serviceCredential(service)
        let error = try await onThread { () throws -> GSSError? in
            let impersonated = try serviceCredential.impersonate(GSSName(principal: user.principal))
            var initiator = GSSInitiatorContext(target: try other.targetName(), credential: impersonated)
            return gssError { () throws(GSSError) in _ = try initiator.step() }
        }
        #expect(error?.windowsStatus == .noCredentials, "\(String(describing: error))")
        #expect(error?.krb5ErrorCode == Int32(KRB5KDC_ERR_BADOPTION_VALUE))
        #expect(error?.explanation.contains("delegate") == true)
    }

    @Test("delegation: a forwarded TGT reaches the acceptor and initiates to a second service")
    func forwardedTGT() async throws {
        let first = try await GSSFixture.service("host")
        let second = try await GSSFixture.service("cifs")
        let user = try await GSSFixture.user()
        let realm = try await GSSFixture.realm()
        try await onThread {
            var initiator = GSSInitiatorContext(target: try first.targetName(), credential: try user.credential(),
                                                flags: GSSContextFlags.standard.union(.delegate))
            var acceptor = GSSAcceptorContext(credential: try first.acceptorCredential())
            try InMemoryEstablishment.establish(&initiator, &acceptor)
            #expect(initiator.grantedFlags.contains(.delegate))
            #expect(acceptor.grantedFlags.contains(.delegate))
            let received = acceptor.delegatedCredential
            let delegated = try #require(received)
            #expect(try delegated.name.description == user.principal)
            var onward = GSSInitiatorContext(target: try second.targetName(), credential: delegated)
            var secondAcceptor = GSSAcceptorContext(credential: try second.acceptorCredential())
            try InMemoryEstablishment.establish(&onward, &secondAcceptor)
            #expect(secondAcceptor.peerName?.description == user.principal)
            // The delegated TGT can be stored into a ccache of its own and used from there.
            let cache = realm.newCCacheName()
            try delegated.store(into: GSSCredentialStore(ccache: cache))
            #expect(try GSSCredential.acquire(store: GSSCredentialStore(ccache: cache)).name.description == user.principal)
        }
    }

    @Test("no deleg flag: MIT gives an S4U2Proxy proxy credential, which the DB2 KDC refuses → 0x8009030E")
    func proxyCredential() async throws {
        let first = try await GSSFixture.service("host")
        let second = try await GSSFixture.service("Microsoft Virtual System Migration Service")
        let user = try await GSSFixture.user()
        let acceptorCredential = try await Self.serviceCredential(first)
        let error = try await onThread { () throws -> GSSError? in
            var initiator = GSSInitiatorContext(target: try first.targetName(), credential: try user.credential())
            var acceptor = GSSAcceptorContext(credential: acceptorCredential)
            try InMemoryEstablishment.establish(&initiator, &acceptor)
            #expect(!initiator.grantedFlags.contains(.delegate))
            // (MIT's acceptor reports GSS_C_DELEG_FLAG for a proxy credential too.)
            let received = acceptor.delegatedCredential
            let proxy = try #require(received, "MIT returns a proxy credential")
            #expect(try proxy.name.description == user.principal)
            var onward = GSSInitiatorContext(target: try second.targetName(), credential: proxy)
            return gssError { () throws(GSSError) in _ = try onward.step() }
        }
        #expect(error?.windowsStatus == .noCredentials, "\(String(describing: error))")
        #expect(error?.windowsStatus.windowsMessage == "No credentials are available in the security package (0x8009030E).")
    }

    @Test("no deleg flag and a keytab-only acceptor: no delegated credential")
    func noDelegation() async throws {
        let service = try await GSSFixture.service()
        let user = try await GSSFixture.user()
        try await onThread {
            var initiator = GSSInitiatorContext(target: try service.targetName(), credential: try user.credential())
            var acceptor = GSSAcceptorContext(credential: try service.acceptorCredential())
            try InMemoryEstablishment.establish(&initiator, &acceptor)
            #expect(acceptor.delegatedCredential == nil)
        }
    }
}

/// `KRB5KDC_ERR_BADOPTION` from krb5.h (-1765328371).
let KRB5KDC_ERR_BADOPTION_VALUE = -1_765_328_371
