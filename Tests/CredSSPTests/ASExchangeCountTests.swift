import CredSSP
import GSS
import Testing
import TestRealm

/// One password AS exchange per CredSSP sign-on: the Kerberos credential from the password, and the SPNEGO
/// credential CredSSP's inner authentication needs derived from the same TGT (``GSSCredential/derived(mechanisms:usage:)``),
/// counted in the test KDC's log.
@Suite struct ASExchangeCountTests {
    /// The AS exchanges the KDC answered with a TGT for `principal` (MIT logs `AS_REQ … ISSUE: … <client> for krbtgt/…`).
    static func issuedTGTs(_ realm: TestRealm, _ principal: String) -> Int {
        realm.kdcLogTail(lines: 4000).split(separator: "\n").filter {
            $0.contains("AS_REQ") && $0.contains("ISSUE") && $0.contains("\(principal) for krbtgt/")
        }.count
    }

    @Test func twoPasswordAcquisitionsCostTwoASExchangesADerivedOneNone() async throws {
        let service = try await KerberosService.make()
        let name = try GSSName(principal: service.userPrincipal)
        #expect(Self.issuedTGTs(service.realm, service.userPrincipal) == 0)

        // Before: a Kerberos and a SPNEGO credential, each from the password.
        _ = try await GSSCredential.acquire(name: name, password: service.password)
        _ = try await GSSCredential.acquire(name: name, password: service.password, mechanisms: [.spnego])
        #expect(Self.issuedTGTs(service.realm, service.userPrincipal) == 2)

        // After: one from the password, the SPNEGO one derived from its TGT.
        let kerberos = try await GSSCredential.acquire(name: name, password: service.password)
        #expect(Self.issuedTGTs(service.realm, service.userPrincipal) == 3)
        let spnego = try kerberos.derived(mechanisms: [.spnego])
        #expect(Self.issuedTGTs(service.realm, service.userPrincipal) == 3)

        // The derived credential works for CredSSP's SPNEGO inner authentication (a TGS exchange, no AS).
        let client = try CredSSPClient(
            credentials: CredSSPCredentials(domain: "MIGRATION", user: service.user, password: service.password),
            inner: GSSInitiatorAuthenticator(target: try GSSName("TERMSRV@\(service.host)", kind: .hostBasedService),
                                             credential: spnego),
            verification: .insecureAcceptAny)
        let outcome = await Exchange.run(client: client, server: try service.server(policy: CredSSPPolicy()))
        #expect(outcome.clientError == nil && outcome.serverError == nil,
                "\(String(describing: outcome.clientError)) \(String(describing: outcome.serverError))")
        #expect(outcome.credentials?.password == service.password)
        #expect(Self.issuedTGTs(service.realm, service.userPrincipal) == 3)
        // The Kerberos credential still serves a plain Kerberos context.
        var context = GSSInitiatorContext(target: try GSSName("TERMSRV@\(service.host)", kind: .hostBasedService),
                                          credential: kerberos, flags: [.mutual])
        #expect(try await context.step(nil).token != nil)
        #expect(Self.issuedTGTs(service.realm, service.userPrincipal) == 3)
    }
}
