import CredSSP
import GSS
import Testing
import WindowsStatus

/// FreeRDP's CredSSP client (`xfreerdp /auth-only`, NTLM inner authentication: Debian's FreeRDP 2 has no GSSAPI)
/// against the Swift server's RDP endpoint (``CredSSPServer/runRDP(inbound:outbound:connectionRequest:)``), with
/// gss-ntlmssp checking the password from `NTLM_USER_FILE`. Fails (never skips) without FreeRDP or Xvfb.
@Suite(.serialized, .timeLimit(.minutes(3))) struct FreeRDPClientTests {
    /// A server whose acceptor takes SPNEGO and raw NTLM: FreeRDP 2.11 sends bare NTLMSSP messages (no SPNEGO).
    static func server(policy: CredSSPPolicy = CredSSPPolicy()) throws -> CredSSPServer {
        let certs = try TestCertificates.get()
        let credential = try GSSCredential.acquire(usage: .accept, mechanisms: [.spnego, NTLMUsers.mechanism])
        return try CredSSPServer(certificateChain: certs.selfSignedChain, privateKey: certs.selfSignedKey,
                                 inner: GSSAcceptorAuthenticator(credential: credential), policy: policy)
    }

    /// FreeRDP's log line once its CredSSP exchange succeeded.
    static let nlaDone = "CONNECTION_STATE_NLA --> CONNECTION_STATE_MCS_CONNECT"

    struct Run {
        var result: Result<CredSSPCredentials, CredSSPError>?
        var request: RDPConnectionRequest?
        var arguments: [String]
        var freerdp: FreeRDP.Outcome
    }

    /// The server side failed; with FreeRDP's exit status and output.
    struct ServeFailed: Error, CustomStringConvertible {
        let description: String
    }

    /// One `xfreerdp /auth-only` connection to `server` with `password`.
    static func connect(_ server: CredSSPServer, password: String, extra: [String] = []) async throws -> Run {
        let (listener, port) = try await RawLoopback.listen()
        async let served = RawLoopback.serveRDP(server, on: listener)
        let freerdp: (arguments: [String], outcome: FreeRDP.Outcome)
        do {
            freerdp = try await FreeRDP.authenticate(port: port, domain: NTLMUsers.domain, user: NTLMUsers.user,
                                                     password: password, extra: extra)
        } catch {
            try? await listener.channel.close()
            _ = try? await served
            throw error
        }
        let (arguments, outcome) = freerdp
        // FreeRDP has exited: a connection it made is served to its end, and none comes any more.
        try? await listener.channel.close()
        do {
            let result = try await served
            return Run(result: result?.result, request: result?.request, arguments: arguments, freerdp: outcome)
        } catch {
            // Our end's transport failed (FreeRDP closed or reset): what FreeRDP printed says why.
            throw ServeFailed(description: "\(error)\nxfreerdp exit \(outcome.status), its output:\n\(outcome.output)")
        }
    }

    /// FreeRDP's argv and output never hold the password (it goes through stdin).
    static func expectNoLeak(_ run: Run, _ password: String) {
        #expect(!run.arguments.joined(separator: " ").contains(password))
        #expect(!run.freerdp.output.contains(password), "\(run.freerdp.output)")
    }

    @Test(arguments: [6, 5, 4, 3, 2])
    func freeRDPClientDelegatesItsCredentials(version: Int) async throws {
        try await NTLMUsers.withUserFiles { _ in
            let policy = CredSSPPolicy(minimumVersion: 2, version: version)
            var server = try Self.server(policy: policy)
            var run = try await Self.connect(server, password: NTLMUsers.password)
            if case .failure(let error)? = run.result, error.kind == .transport {
                // xfreerdp hung up mid-exchange: seen in loaded full runs (2 of 5 on 2026-12-03, version 6, the first
                // case), never alone. Once more, on a new server; what it printed the first time is shown.
                print("FreeRDP hung up mid-CredSSP (version \(version): \(error)); once more. xfreerdp exit \(run.freerdp.status), output:\n\(run.freerdp.output)")
                server = try Self.server(policy: policy)
                run = try await Self.connect(server, password: NTLMUsers.password)
            }
            guard case .success(let credentials)? = run.result else {
                Issue.record("no credentials: \(String(describing: run.result))\nxfreerdp exit \(run.freerdp.status), output:\n\(run.freerdp.output)")
                return
            }
            #expect(credentials.domain == NTLMUsers.domain)
            #expect(credentials.user == NTLMUsers.user)
            #expect(credentials.password == NTLMUsers.password)
            // FreeRDP sent the credentials only after checking our pubKeyAuth, and moved on to RDP's MCS phase,
            // which this endpoint does not serve (FreeRDP 2.11's /auth-only runs the whole RDP connection sequence:
            // it exits non-zero here, after the CredSSP part succeeded).
            #expect(run.freerdp.output.contains(Self.nlaDone), "\(run.freerdp.output)")
            // FreeRDP 2.11 announces version 6 and offers TLS and CredSSP; MS-CSSP: both use the smaller version.
            #expect(await server.clientVersion == 6)
            #expect(await server.negotiatedVersion == version)
            #expect(run.freerdp.output.contains("CredSSP protocol support 6, peer supports \(version)"), "\(run.freerdp.output)")
            #expect(run.request?.requestedProtocols?.contains(.hybrid) == true)
            #expect(run.request?.cookie == NTLMUsers.user)
            Self.expectNoLeak(run, NTLMUsers.password)
        }
    }

    @Test func wrongPasswordFailsOnBothSidesWithLogonDenied() async throws {
        try await NTLMUsers.withUserFiles { _ in
            let server = try Self.server()
            let run = try await Self.connect(server, password: "Wrong-Pa55word")
            let error = try #require(run.result?.failure, "\(String(describing: run.result))")
            #expect(error.kind == .innerAuthenticationFailed)
            #expect(error.status == .logonDenied)
            #expect(error.replyToPeer != nil)
            // FreeRDP reads the TSRequest's errorCode and reports it.
            #expect(run.freerdp.status != 0)
            #expect(run.freerdp.output.contains("0x8009030C"), "\(run.freerdp.output)")
            #expect(!run.freerdp.output.contains(Self.nlaDone))
            Self.expectNoLeak(run, "Wrong-Pa55word")
        }
    }

    @Test func clientWithoutCredSSPIsRefusedInTheNegotiation() async throws {
        try await NTLMUsers.withUserFiles { _ in
            let server = try Self.server()
            let run = try await Self.connect(server, password: NTLMUsers.password, extra: ["/sec:tls"])
            let error = try #require(run.result?.failure, "\(String(describing: run.result))")
            #expect(error.kind == .rdpNegotiation)
            #expect(error.status == .unsupportedFunction)
            #expect(run.request?.requestedProtocols?.contains(.hybrid) == false)
            #expect(run.freerdp.status != 0)
            #expect(run.freerdp.output.contains("HYBRID_REQUIRED_BY_SERVER"), "\(run.freerdp.output)")
        }
    }
}
