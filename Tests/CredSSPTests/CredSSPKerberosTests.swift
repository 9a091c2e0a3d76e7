import CredSSP
import Foundation
import GSS
import NIOSSL
import TestRealm
import Testing

/// CredSSP with its real inner authentication: SPNEGO/Kerberos through GSS against the test realm's KDC.
@Suite struct CredSSPKerberosTests {
    static func unique() -> String { String(UUID().uuidString.prefix(8)).lowercased() }

    @Test(arguments: [(6, TLSVersion.tlsv13), (6, .tlsv12), (2, .tlsv13)])
    func kerberosDeliversCredentials(version: Int, tls: TLSVersion) async throws {
        let realm = try await TestRealm.shared()
        let host = "host-\(Self.unique()).test"
        let service = "TERMSRV/\(host)@\(realm.name)"
        try await realm.addPrincipal(service, password: nil)
        let keytab = try await realm.exportKeytab([service])
        let user = "user-\(Self.unique())"
        let password = "pw-\(Self.unique())"
        try await realm.addPrincipal("\(user)@\(realm.name)", password: password)

        let acceptorCredential = try GSSCredential.acquire(name: GSSName(principal: service), usage: .accept,
                                                           mechanisms: [.spnego], store: GSSCredentialStore(keytab: "FILE:" + keytab))
        let userCredential = try await GSSCredential.acquire(name: GSSName(principal: "\(user)@\(realm.name)"), password: password,
                                                       mechanisms: [.spnego])
        let certs = try TestCertificates.get()
        let client = try CredSSPClient(
            credentials: CredSSPCredentials(domain: realm.name, user: user, password: password),
            inner: GSSInitiatorAuthenticator(target: try GSSName("TERMSRV@\(host)", kind: .hostBasedService),
                                             credential: userCredential),
            verification: .insecureAcceptAny,
            policy: CredSSPPolicy(minimumVersion: 2, version: version, maximumTLSVersion: tls))
        let server = try CredSSPServer(certificateChain: certs.selfSignedChain, privateKey: certs.selfSignedKey,
                                       inner: GSSAcceptorAuthenticator(credential: acceptorCredential),
                                       policy: CredSSPPolicy(minimumVersion: 2))
        let outcome = await Exchange.run(client: client, server: server)
        #expect(outcome.clientError == nil, "\(String(describing: outcome.clientError))")
        #expect(outcome.serverError == nil, "\(String(describing: outcome.serverError))")
        let credentials = try #require(outcome.credentials)
        #expect(credentials.domain == realm.name)
        #expect(credentials.user == user)
        #expect(credentials.password == password)
        #expect(await server.negotiatedVersion == version)
    }
}
