import CredSSP
import GSS
import Testing
import WindowsStatus

/// NTLM as CredSSP's inner authentication: gss-ntlmssp (Debian package `gss-ntlmssp`) under MIT's SPNEGO on our
/// side, pyspnego's NTLM on the other, both reading the same `NTLM_USER_FILE`. Includes the wrong-password path,
/// which reaches CredSSP's `errorCode` only with NTLM (with Kerberos a wrong password fails at the client's KDC).
@Suite(.serialized) struct PyspnegoNTLMTests {
    static let host = "hostb.test"

    /// A SPNEGO acceptor without a name: gss-ntlmssp serves NTLM from `NTLM_USER_FILE`.
    static func server() throws -> CredSSPServer {
        let certs = try TestCertificates.get()
        let credential = try GSSCredential.acquire(usage: .accept, mechanisms: [.spnego])
        return try CredSSPServer(certificateChain: certs.selfSignedChain, privateKey: certs.selfSignedKey,
                                 inner: GSSAcceptorAuthenticator(credential: credential))
    }

    /// A CredSSP client whose inner SPNEGO runs NTLM with `password`, delegating the same account.
    static func client(password: String) async throws -> CredSSPClient {
        let credential = try await GSSCredential.acquire(name: GSSName(NTLMUsers.qualifiedUser, kind: .user),
                                                         password: password, mechanisms: [NTLMUsers.mechanism])
        return try CredSSPClient(
            credentials: CredSSPCredentials(domain: NTLMUsers.domain, user: NTLMUsers.user, password: password),
            inner: GSSInitiatorAuthenticator(target: try GSSName("TERMSRV@\(host)", kind: .hostBasedService),
                                             credential: credential),
            verification: .insecureAcceptAny)
    }

    static func environment(_ userFile: String) async throws -> [String: String] {
        let service = try await KerberosService.make()  // a realm for KRB5_CONFIG: pyspnego tries Kerberos first
        return service.realm.environment.merging(["NTLM_USER_FILE": userFile]) { $1 }
    }

    @Test func swiftClientToPyspnegoServer() async throws {
        try await NTLMUsers.withUserFiles { file in
            let client = try await Self.client(password: NTLMUsers.password)
            let run = try await PyspnegoInteropTests.againstPyspnegoServer(client, host: Self.host,
                                                                          environment: try await Self.environment(file))
            #expect(run.result?.failure == nil, "\(String(describing: run.result))")
            let fields = try PyspnegoInteropTests.fields(run.peer)
            #expect(fields["domain"] as? String == NTLMUsers.domain, "\(run.peer)")
            #expect(fields["user"] as? String == NTLMUsers.user)
            #expect(fields["password"] as? String == NTLMUsers.password)
            #expect(fields["version"] as? Int == 6)
        }
    }

    @Test func pyspnegoClientToSwiftServer() async throws {
        try await NTLMUsers.withUserFiles { file in
            let server = try Self.server()
            let run = try await PyspnegoInteropTests.fromPyspnegoClient(
                server, arguments: [NTLMUsers.qualifiedUser, NTLMUsers.password, Self.host, "TERMSRV"],
                environment: try await Self.environment(file))
            #expect(run.peer == "DONE 6", "\(run.peer)")
            let credentials = try #require(try run.result?.get())
            #expect(credentials.domain == NTLMUsers.domain)
            #expect(credentials.user == NTLMUsers.user)
            #expect(credentials.password == NTLMUsers.password)
        }
    }

    @Test func wrongPasswordFromPyspnegoIsLogonDenied() async throws {
        try await NTLMUsers.withUserFiles { file in
            let server = try Self.server()
            let run = try await PyspnegoInteropTests.fromPyspnegoClient(
                server, arguments: [NTLMUsers.qualifiedUser, "wrong-password", Self.host, "TERMSRV"],
                environment: try await Self.environment(file))
            let error = try #require(run.result?.failure, "\(run.peer)")
            #expect(error.kind == .innerAuthenticationFailed)
            #expect(error.status == .logonDenied)
            #expect(run.peer.hasPrefix("ERROR ") && run.peer.contains(" 0x8009030C:"), "\(run.peer)")
        }
    }

    @Test func wrongPasswordToPyspnegoIsReportedByErrorCode() async throws {
        try await NTLMUsers.withUserFiles(ourPassword: "wrong-password") { file in
            let client = try await Self.client(password: "wrong-password")
            let run = try await PyspnegoInteropTests.againstPyspnegoServer(client, host: Self.host,
                                                                          environment: try await Self.environment(file))
            let error = try #require(run.result?.failure, "\(run.peer) \(String(describing: run.result))")
            #expect(error.kind == .peerReportedError)
            #expect(error.status == .logonDenied)
            #expect(error.status.code == 0x8009_030C)
            #expect(!run.peer.hasPrefix("RESULT"), "\(run.peer)")
        }
    }

    @Test func swiftClientToSwiftServer() async throws {
        try await NTLMUsers.withUserFiles { _ in
            let outcome = await Exchange.run(client: try await Self.client(password: NTLMUsers.password),
                                             server: try Self.server())
            #expect(outcome.clientError == nil && outcome.serverError == nil,
                    "\(String(describing: outcome.clientError)) \(String(describing: outcome.serverError))")
            #expect(outcome.credentials?.user == NTLMUsers.user)
        }
    }
}
