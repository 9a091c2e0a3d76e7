import CredSSP
import Foundation
import GSS
import TestRealm

/// A CredSSP service principal (`TERMSRV/host-….test`) with its keytab and a user with a password, in the shared
/// test realm; every call makes fresh names.
struct KerberosService: Sendable {
    let realm: TestRealm
    let host: String
    /// `TERMSRV/<host>@REALM`.
    let principal: String
    let keytab: String
    /// The user's short name and full principal.
    let user: String
    let userPrincipal: String
    let password: String

    static func unique() -> String { String(UUID().uuidString.prefix(8)).lowercased() }

    static func make() async throws -> KerberosService {
        let realm = try await TestRealm.shared()
        let host = "host-\(unique()).test"
        let principal = "TERMSRV/\(host)@\(realm.name)"
        try await realm.addPrincipal(principal, password: nil)
        let keytab = try await realm.exportKeytab([principal])
        let user = "user-\(unique())"
        let password = "pw-\(unique())"
        try await realm.addPrincipal("\(user)@\(realm.name)", password: password)
        return KerberosService(realm: realm, host: host, principal: principal, keytab: keytab, user: user,
                               userPrincipal: "\(user)@\(realm.name)", password: password)
    }

    /// The realm's environment plus the service keytab (for a pyspnego server).
    var serverEnvironment: [String: String] { realm.environment.merging(["KRB5_KTNAME": "FILE:" + keytab]) { $1 } }

    /// A SPNEGO acceptor with the service's keytab.
    func acceptor() throws -> GSSAcceptorAuthenticator {
        GSSAcceptorAuthenticator(credential: try GSSCredential.acquire(
            name: GSSName(principal: principal), usage: .accept, mechanisms: [.spnego],
            store: GSSCredentialStore(keytab: "FILE:" + keytab)))
    }

    /// A SPNEGO initiator for the user (an AS exchange with the KDC) towards `TERMSRV@host`.
    func initiator() async throws -> GSSInitiatorAuthenticator {
        let credential = try await GSSCredential.acquire(name: GSSName(principal: userPrincipal), password: password,
                                                         mechanisms: [.spnego])
        return GSSInitiatorAuthenticator(target: try GSSName("TERMSRV@\(host)", kind: .hostBasedService),
                                         credential: credential)
    }

    /// A CredSSP server for this service with the self-signed test certificate.
    func server(policy: CredSSPPolicy) throws -> CredSSPServer {
        let certs = try TestCertificates.get()
        return try CredSSPServer(certificateChain: certs.selfSignedChain, privateKey: certs.selfSignedKey,
                                 inner: try acceptor(), policy: policy)
    }
}
