@testable import CredSSP
import NIOSSL
import Testing
import WindowsStatus

/// Runs a client and a server against each other in memory, strictly alternating turns.
enum Exchange {
    struct Outcome {
        var credentials: CredSSPCredentials?
        var clientError: CredSSPError?
        var serverError: CredSSPError?
    }

    static func run(client: CredSSPClient, server: CredSSPServer) async -> Outcome {
        var outcome = Outcome()
        var toServer: [UInt8]
        do {
            guard case .send(let first) = try await client.step(nil) else { return outcome }
            toServer = first
        } catch {
            outcome.clientError = error
            return outcome
        }
        for _ in 0..<20 {
            let toClient: [UInt8]
            do {
                switch try await server.step(toServer) {
                case .finished(let credentials):
                    outcome.credentials = credentials
                    return outcome
                case .send(let bytes):
                    toClient = bytes
                }
            } catch {
                outcome.serverError = error
                guard let reply = error.replyToPeer else { return outcome }
                do { _ = try await client.step(reply) } catch { outcome.clientError = error }
                return outcome
            }
            do {
                switch try await client.step(toClient) {
                case .send(let bytes): toServer = bytes
                case .finished(let bytes): toServer = bytes
                }
            } catch {
                outcome.clientError = error
                return outcome
            }
        }
        return outcome
    }
}

@Suite struct CredSSPExchangeTests {
    static let users = ["alice": "Corr3ct-horse"]

    static func pair(flow: TestDoubleAuthenticator.Flow = .mutual, password: String = "Corr3ct-horse",
                     clientPolicy: CredSSPPolicy = CredSSPPolicy(), serverPolicy: CredSSPPolicy = CredSSPPolicy(),
                     verification: CredSSPServerVerification = .insecureAcceptAny, issued: Bool = false,
                     tamper: Bool = false, user: String = "alice") throws -> (CredSSPClient, CredSSPServer) {
        let certs = try TestCertificates.get()
        let clientInner = TestDoubleAuthenticator(flow: flow, role: .client(user: user, password: password))
        clientInner.tamperWrap = tamper
        let client = try CredSSPClient(credentials: CredSSPCredentials(domain: "CONTOSO", user: user, password: password),
                                       inner: clientInner, verification: verification, policy: clientPolicy)
        let server = try CredSSPServer(certificateChain: issued ? certs.issuedChain : certs.selfSignedChain,
                                       privateKey: issued ? certs.issuedKey : certs.selfSignedKey,
                                       inner: TestDoubleAuthenticator(flow: flow, role: .server(users: users)),
                                       policy: serverPolicy)
        return (client, server)
    }

    static let tlsVersions: [TLSVersion] = [.tlsv12, .tlsv13]

    @Test(arguments: 2...6, [TLSVersion.tlsv12, .tlsv13])
    func deliversCredentialsAtEveryVersion(version: Int, tls: TLSVersion) async throws {
        for flow in [TestDoubleAuthenticator.Flow.mutual, .threeLeg] {
            let policy = CredSSPPolicy(minimumVersion: 2, version: version, maximumTLSVersion: tls)
            let (client, server) = try Self.pair(flow: flow, clientPolicy: policy,
                                                 serverPolicy: CredSSPPolicy(minimumVersion: 2))
            let outcome = await Exchange.run(client: client, server: server)
            #expect(outcome.clientError == nil && outcome.serverError == nil)
            let credentials = try #require(outcome.credentials)
            #expect(credentials.domain == "CONTOSO")
            #expect(credentials.user == "alice")
            #expect(credentials.password == "Corr3ct-horse")
            #expect(await client.negotiatedVersion == version)
            #expect(await server.negotiatedVersion == version)
            #expect(await server.tlsVersion == tls)
        }
    }

    @Test func wrongPasswordIsReportedAsLogonDenied() async throws {
        let (client, server) = try Self.pair(flow: .threeLeg, password: "wrong")
        let outcome = await Exchange.run(client: client, server: server)
        #expect(outcome.credentials == nil)
        #expect(outcome.serverError?.status == .logonDenied)
        #expect(outcome.clientError?.kind == .peerReportedError)
        #expect(outcome.clientError?.status.code == 0x8009_030C)
    }

    @Test func versionFiveSendsNoErrorCode() async throws {
        let policy = CredSSPPolicy(minimumVersion: 5, version: 5)
        let (client, server) = try Self.pair(flow: .threeLeg, password: "wrong", clientPolicy: policy, serverPolicy: policy)
        let outcome = await Exchange.run(client: client, server: server)
        #expect(outcome.serverError?.status == .logonDenied)
        #expect(outcome.serverError?.replyToPeer == nil)
    }

    @Test func clientBelowServerMinimumIsRefused() async throws {
        let (client, server) = try Self.pair(clientPolicy: CredSSPPolicy(minimumVersion: 3, version: 3))
        let outcome = await Exchange.run(client: client, server: server)
        #expect(outcome.credentials == nil)
        #expect(outcome.serverError?.kind == .versionRefused)
        #expect(outcome.clientError?.status == .unsupportedFunction)
    }

    @Test func serverBelowClientMinimumIsRefused() async throws {
        let (client, server) = try Self.pair(serverPolicy: CredSSPPolicy(minimumVersion: 4, version: 4))
        let outcome = await Exchange.run(client: client, server: server)
        #expect(outcome.credentials == nil)
        #expect(outcome.clientError?.kind == .versionRefused)
    }

    @Test(arguments: [4, 6]) func tamperedPubKeyAuthIsRefused(version: Int) async throws {
        let policy = CredSSPPolicy(minimumVersion: 2, version: version)
        let (client, server) = try Self.pair(clientPolicy: policy, serverPolicy: policy, tamper: true)
        let outcome = await Exchange.run(client: client, server: server)
        #expect(outcome.credentials == nil)
        #expect(outcome.serverError?.kind == .publicKeyMismatch)
        #expect(outcome.serverError?.status == .messageAltered)
        #expect(outcome.clientError?.status == .messageAltered)
    }

    @Test func certificateAuthorityVerification() async throws {
        try await TestCertificates.get().withCAFile { caFile in
            let good = try Self.pair(verification: .certificateAuthorities(caFile: caFile, hostname: TestCertificates.hostname),
                                     issued: true)
            #expect(await Exchange.run(client: good.0, server: good.1).credentials?.user == "alice")

            let wrongHost = try Self.pair(verification: .certificateAuthorities(caFile: caFile, hostname: "evil.test"),
                                          issued: true)
            let refused = await Exchange.run(client: wrongHost.0, server: wrongHost.1)
            #expect(refused.credentials == nil)
            #expect(refused.clientError != nil)

            let untrusted = try Self.pair(verification: .certificateAuthorities(caFile: caFile, hostname: TestCertificates.hostname))
            let outcome = await Exchange.run(client: untrusted.0, server: untrusted.1)
            #expect(outcome.credentials == nil)
            #expect(outcome.clientError?.kind == .serverCertificateRejected)
            #expect(outcome.clientError?.status == .untrustedRoot)
        }
    }

    @Test func pinnedPublicKey() async throws {
        let certs = try TestCertificates.get()
        let pin = try CertificatePublicKey(certificateDER: try certs.selfSignedChain[0].toDERBytes()).sha256
        let good = try Self.pair(verification: .pinnedPublicKeySHA256(pin))
        #expect(await Exchange.run(client: good.0, server: good.1).credentials?.password == "Corr3ct-horse")

        let bad = try Self.pair(verification: .pinnedPublicKeySHA256(Array(repeating: 0, count: 32)))
        let outcome = await Exchange.run(client: bad.0, server: bad.1)
        #expect(outcome.credentials == nil)
        #expect(outcome.clientError?.kind == .serverCertificateRejected)
    }

    @Test func oversizedUserNameIsRefused() async throws {
        let long = String(repeating: "a", count: 300)
        let (client, server) = try Self.pair(user: long)
        // The test double knows no such user: give the server a policy-only check by registering it.
        _ = client
        _ = server
        let certs = try TestCertificates.get()
        let c = try CredSSPClient(credentials: CredSSPCredentials(domain: "", user: long, password: "pw"),
                                  inner: TestDoubleAuthenticator(flow: .mutual, role: .client(user: "alice", password: "Corr3ct-horse")),
                                  verification: .insecureAcceptAny)
        let s = try CredSSPServer(certificateChain: certs.selfSignedChain, privateKey: certs.selfSignedKey,
                                  inner: TestDoubleAuthenticator(flow: .mutual, role: .server(users: Self.users)))
        let outcome = await Exchange.run(client: c, server: s)
        #expect(outcome.credentials == nil)
        #expect(outcome.serverError?.kind == .sizeLimitExceeded)
    }

    @Test func garbageAfterHandshakeIsATypedError() async throws {
        let (client, server) = try Self.pair()
        guard case .send(let hello) = try await client.step(nil) else { Issue.record("no hello"); return }
        _ = hello
        await #expect(throws: CredSSPError.self) { try await server.step([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]) }
        await #expect(throws: CredSSPError.self) { try await server.step([]) }
    }

    @Test func policyIsValidated() {
        #expect(throws: CredSSPError.self) {
            try CredSSPClient(credentials: CredSSPCredentials(domain: "", user: "u", password: "p"),
                              inner: TestDoubleAuthenticator(flow: .mutual, role: .client(user: "u", password: "p")),
                              verification: .insecureAcceptAny, policy: CredSSPPolicy(minimumVersion: 6, version: 5))
        }
    }

    @Test func clientWipesCredentialsAfterSending() async throws {
        let credentials = CredSSPCredentials(domain: "CONTOSO", user: "alice", password: "Corr3ct-horse")
        let certs = try TestCertificates.get()
        let client = try CredSSPClient(credentials: credentials,
                                       inner: TestDoubleAuthenticator(flow: .mutual, role: .client(user: "alice", password: "Corr3ct-horse")),
                                       verification: .insecureAcceptAny)
        let server = try CredSSPServer(certificateChain: certs.selfSignedChain, privateKey: certs.selfSignedKey,
                                       inner: TestDoubleAuthenticator(flow: .mutual, role: .server(users: Self.users)))
        #expect(await Exchange.run(client: client, server: server).credentials != nil)
        #expect(credentials.isWiped)
    }
}
