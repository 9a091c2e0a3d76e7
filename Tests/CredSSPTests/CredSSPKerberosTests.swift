import CredSSP
import NIOSSL
import Testing

/// CredSSP with its real inner authentication: SPNEGO/Kerberos through GSS against the test realm's KDC.
@Suite struct CredSSPKerberosTests {
    @Test(arguments: [(6, TLSVersion.tlsv13), (6, .tlsv12), (2, .tlsv13)])
    func kerberosDeliversCredentials(version: Int, tls: TLSVersion) async throws {
        let service = try await KerberosService.make()
        let client = try CredSSPClient(
            credentials: CredSSPCredentials(domain: service.realm.name, user: service.user, password: service.password),
            inner: try await service.initiator(), verification: .insecureAcceptAny,
            policy: CredSSPPolicy(minimumVersion: 2, version: version, maximumTLSVersion: tls))
        let server = try service.server(policy: CredSSPPolicy(minimumVersion: 2))
        let outcome = await Exchange.run(client: client, server: server)
        #expect(outcome.clientError == nil, "\(String(describing: outcome.clientError))")
        #expect(outcome.serverError == nil, "\(String(describing: outcome.serverError))")
        let credentials = try #require(outcome.credentials)
        #expect(credentials.domain == service.realm.name)
        #expect(credentials.user == service.user)
        #expect(credentials.password == service.password)
        #expect(await server.negotiatedVersion == version)
    }
}
