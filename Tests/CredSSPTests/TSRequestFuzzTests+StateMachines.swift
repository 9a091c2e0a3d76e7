@testable import CredSSP
import NIOSSL
import Testing
import TestSupport

/// Hostile peers against the state machines: TSRequests out of order inside a real TLS session, and TLS garbage.
/// Every failure must be a ``CredSSPError``, no credentials may come out, and a failed machine stays failed.
extension TSRequestFuzzTests {
    /// A client that completes TLS with a real ``CredSSPServer`` and then sends whatever TSRequests it is told to.
    /// An actor on a ``CredSSPSessionThread``, as its TLS engine is bound to one thread.
    actor ScriptedClient {
        private let thread = CredSSPSessionThread()
        nonisolated var unownedExecutor: UnownedSerialExecutor { thread.asUnownedSerialExecutor() }
        deinit { thread.stop() }

        let server: CredSSPServer
        private var tls: TLSEngine?

        init(_ server: CredSSPServer) { self.server = server }

        static func connect(_ server: CredSSPServer, tls version: TLSVersion = .tlsv13) async throws -> ScriptedClient {
            let client = ScriptedClient(server)
            try await client.handshake(version)
            return client
        }

        private func handshake(_ version: TLSVersion) async throws {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            configuration.maximumTLSVersion = version
            let tls = try TLSEngine.client(configuration: configuration, serverHostname: nil)
            self.tls = tls
            for _ in 0..<10 {
                let out = try tls.drainRecords()
                if out.isEmpty { break }
                guard case .send(let reply) = try await server.step(out) else { throw CredSSPError.unexpected("finished") }
                try tls.feed(reply)
            }
            #expect(tls.handshakeComplete)
        }

        /// Sends raw plaintext inside the TLS session.
        func send(plaintext: [UInt8]) async throws(CredSSPError) -> CredSSPServerStep {
            let records: [UInt8]
            do {
                guard let tls else { throw CredSSPError.unexpected("not connected") }
                try tls.write(plaintext)
                records = try tls.drainRecords()
            } catch {
                throw (error as? CredSSPError) ?? CredSSPError.unexpected("\(error)")
            }
            return try await server.step(records)
        }

        func send(_ request: TSRequest) async throws(CredSSPError) -> CredSSPServerStep {
            let bytes: [UInt8]
            do { bytes = try TSRequestCodec.encode(request) } catch { throw CredSSPError.unexpected("\(error)") }
            return try await send(plaintext: bytes)
        }
    }

    /// A server that completes TLS with a real ``CredSSPClient``, then answers with whatever it is told to.
    actor ScriptedServer {
        private let thread = CredSSPSessionThread()
        nonisolated var unownedExecutor: UnownedSerialExecutor { thread.asUnownedSerialExecutor() }
        deinit { thread.stop() }

        let client: CredSSPClient
        private var tls: TLSEngine?
        /// The client's first TSRequest.
        private(set) var first: TSRequest?

        init(_ client: CredSSPClient) { self.client = client }

        static func accept(_ client: CredSSPClient, tls version: TLSVersion = .tlsv13) async throws -> ScriptedServer {
            let server = ScriptedServer(client)
            try await server.handshake(version)
            return server
        }

        private func handshake(_ version: TLSVersion) async throws {
            let certs = try TestCertificates.get()
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: certs.selfSignedChain.map { .certificate($0) }, privateKey: .privateKey(certs.selfSignedKey))
            configuration.maximumTLSVersion = version
            let tls = try TLSEngine.server(configuration: configuration)
            self.tls = tls
            guard case .send(var toServer) = try await client.step(nil) else { throw CredSSPError.unexpected("no hello") }
            for _ in 0..<10 {
                try tls.feed(toServer)
                let plaintext = try tls.readPlaintext()
                if !plaintext.isEmpty {
                    first = try TSRequestCodec.decodeRequest(plaintext, policy: CredSSPPolicy())
                    return
                }
                guard case .send(let next) = try await client.step(try tls.drainRecords()) else {
                    throw CredSSPError.unexpected("finished")
                }
                toServer = next
            }
            throw CredSSPError.unexpected("no TSRequest from the client")
        }

        func send(_ request: TSRequest) async throws(CredSSPError) -> CredSSPClientStep {
            let records: [UInt8]
            do {
                guard let tls else { throw CredSSPError.unexpected("not connected") }
                try tls.write(try TSRequestCodec.encode(request))
                records = try tls.drainRecords()
            } catch {
                throw (error as? CredSSPError) ?? CredSSPError.unexpected("\(error)")
            }
            return try await client.step(records)
        }
    }

    static func freshServer(flow: TestDoubleAuthenticator.Flow = .mutual) throws -> CredSSPServer {
        try CredSSPExchangeTests.pair(flow: flow, serverPolicy: CredSSPPolicy(minimumVersion: 2)).1
    }

    static func freshClient() throws -> CredSSPClient {
        try CredSSPExchangeTests.pair().0
    }

    /// After a failure, the machine refuses everything with `invalidState`.
    static func expectStaysFailed(_ server: CredSSPServer) async {
        let error = await #expect(throws: CredSSPError.self) { try await server.step([0x16, 0x03, 0x03, 0x00, 0x01, 0x00]) }
        #expect(error?.kind == .invalidState)
    }

    @Test func serverRefusesTSRequestsOutOfOrder() async throws {
        let cases: [(String, TSRequest, CredSSPError.Kind)] = [
            ("authInfo first", TSRequest(version: 6, authInfo: [1, 2, 3]), .unexpectedMessage),
            ("empty TSRequest", TSRequest(version: 6), .unexpectedMessage),
            ("pubKeyAuth before the inner authentication", TSRequest(version: 6, pubKeyAuth: Array(repeating: 9, count: 60)),
             .unexpectedMessage),
            ("garbage inner token", TSRequest(version: 6, negoTokens: NegoData(tokens: [[0x99, 0x98]])), .innerAuthenticationFailed),
            ("errorCode from the client", TSRequest(version: 6, errorCode: 0x8009_030C), .peerReportedError),
            ("version 0", TSRequest(version: 0, negoTokens: NegoData(tokens: [[0x11]])), .versionRefused),
            ("negative version", TSRequest(version: -7, negoTokens: NegoData(tokens: [[0x11]])), .versionRefused),
        ]
        for (name, request, kind) in cases {
            let server = try Self.freshServer()
            let scripted = try await ScriptedClient.connect(server)
            let error = await #expect(throws: CredSSPError.self, "\(name)") { try await scripted.send(request) }
            #expect(error?.kind == kind, "\(name): \(String(describing: error))")
            await Self.expectStaysFailed(server)
        }
    }

    @Test func serverRefusesCredentialsBeforeThePublicKeyExchange() async throws {
        // A genuine first leg, then authInfo where pubKeyAuth belongs.
        let server = try Self.freshServer(flow: .threeLeg)
        let scripted = try await ScriptedClient.connect(server)
        let inner = TestDoubleAuthenticator(flow: .threeLeg, role: .client(user: "alice", password: "Corr3ct-horse"))
        guard case .send = try await scripted.send(TSRequest(version: 6, negoTokens: NegoData(tokens: [try #require(try inner.step(nil))]))) else {
            Issue.record("no challenge")
            return
        }
        let error = await #expect(throws: CredSSPError.self) { try await scripted.send(TSRequest(version: 6, authInfo: [0x30, 0x00])) }
        #expect(error?.kind == .unexpectedMessage)
    }

    @Test func serverRefusesPlaintextThatIsNotATSRequest() async throws {
        var rng = SeededGenerator(seed: 11)
        for _ in 0..<40 {
            let server = try Self.freshServer()
            let scripted = try await ScriptedClient.connect(server, tls: Bool.random(using: &rng) ? .tlsv12 : .tlsv13)
            var bytes = Self.valid
            bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            if Bool.random(using: &rng) { bytes = Array(bytes.prefix(Int.random(in: 1..<bytes.count, using: &rng))) }
            do {
                _ = try await scripted.send(plaintext: bytes)
            } catch {
                #expect(error.kind != .invalidState, "\(error)")
            }
        }
    }

    /// Random TLS-looking and random records at every point of a genuine exchange, into both machines.
    @Test func tlsGarbageIntoBothMachines() async throws {
        var rng = SeededGenerator(seed: 12)
        for round in 0..<60 {
            let (client, server) = try CredSSPExchangeTests.pair(flow: round % 2 == 0 ? .mutual : .threeLeg,
                                                                clientPolicy: CredSSPPolicy(maximumTLSVersion: round % 3 == 0 ? .tlsv12 : .tlsv13))
            let corruptAt = Int.random(in: 0..<8, using: &rng)
            let garbage = Self.tlsGarbage(using: &rng)
            let intoServer = Bool.random(using: &rng)
            var turn = 0
            var toServer: [UInt8]
            guard case .send(let hello) = try await client.step(nil) else { Issue.record("no hello"); return }
            toServer = hello
            exchange: while turn < 20 {
                if intoServer, turn == corruptAt { toServer = garbage }
                let toClient: [UInt8]
                do {
                    switch try await server.step(toServer) {
                    case .finished(let credentials):
                        #expect(!intoServer || corruptAt > turn, "credentials after garbage: \(credentials)")
                        break exchange
                    case .send(let bytes): toClient = intoServer || turn != corruptAt ? bytes : garbage
                    }
                } catch {
                    #expect(error.kind != .invalidState || turn == 0, "\(error)")
                    break exchange
                }
                do {
                    switch try await client.step(toClient) {
                    case .send(let bytes): toServer = bytes
                    case .finished(let bytes): toServer = bytes
                    }
                } catch {
                    await #expect(throws: CredSSPError.self) { try await client.step([0x17, 0x03, 0x03, 0x00, 0x00]) }
                    break exchange
                }
                turn += 1
            }
        }
    }

    static func tlsGarbage(using rng: inout SeededGenerator) -> [UInt8] {
        let count = Int.random(in: 0...200, using: &rng)
        var body = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
        switch Int.random(in: 0..<4, using: &rng) {
        case 0:  // a record header with a plausible type and version, length that may lie
            let length = Bool.random(using: &rng) ? count : Int.random(in: 0...0xFFFF, using: &rng)
            body = [[0x14, 0x15, 0x16, 0x17][Int.random(in: 0..<4, using: &rng)], 0x03, 0x03,
                    UInt8(length >> 8), UInt8(length & 0xFF)] + body
        case 1:  // a huge record length
            body = [0x17, 0x03, 0x03, 0xFF, 0xFF] + body
        case 2:  // an SSLv2-style header
            body = [0x80, UInt8(count & 0x7F), 0x01] + body
        default:
            break
        }
        return body
    }

    @Test func clientRefusesServerAnswersOutOfOrder() async throws {
        let cases: [(String, TSRequest, CredSSPError.Kind)] = [
            ("no negoTokens", TSRequest(version: 6), .unexpectedMessage),
            ("pubKeyAuth instead of a token", TSRequest(version: 6, pubKeyAuth: Array(repeating: 1, count: 60)), .unexpectedMessage),
            ("errorCode", TSRequest(version: 6, errorCode: 0x8009_030C), .peerReportedError),
            ("old version", TSRequest(version: 2, negoTokens: NegoData(tokens: [[0x12]])), .versionRefused),
            ("garbage inner token", TSRequest(version: 6, negoTokens: NegoData(tokens: [[0x12, 0x00]])), .innerAuthenticationFailed),
        ]
        for (name, request, kind) in cases {
            let client = try CredSSPExchangeTests.pair(flow: .threeLeg).0
            let scripted = try await ScriptedServer.accept(client)
            #expect(await scripted.first?.negoTokens != nil)
            let error = await #expect(throws: CredSSPError.self, "\(name)") { try await scripted.send(request) }
            #expect(error?.kind == kind, "\(name): \(String(describing: error))")
            await #expect(throws: CredSSPError.self) { try await client.step([]) }
        }
    }

    @Test func clientRefusesRandomTSRequests() async throws {
        var rng = SeededGenerator(seed: 13)
        for _ in 0..<40 {
            let client = try Self.freshClient()
            let scripted = try await ScriptedServer.accept(client)
            let request = TSRequest(
                version: Int.random(in: -2...9, using: &rng),
                negoTokens: Bool.random(using: &rng) ? NegoData(tokens: [Self.randomBytes(0...80, using: &rng)]) : nil,
                authInfo: Bool.random(using: &rng) ? Self.randomBytes(0...40, using: &rng) : nil,
                pubKeyAuth: Bool.random(using: &rng) ? Self.randomBytes(0...80, using: &rng) : nil,
                errorCode: Bool.random(using: &rng) ? UInt32.random(in: 0...UInt32.max, using: &rng) : nil,
                clientNonce: Bool.random(using: &rng) ? Self.randomBytes(0...40, using: &rng) : nil)
            do {
                let step = try await scripted.send(request)
                guard case .send = step else { Issue.record("finished on a random answer"); continue }
            } catch {
                #expect(error.kind != .invalidState, "\(error)")
            }
        }
    }

    static func randomBytes(_ range: ClosedRange<Int>, using rng: inout SeededGenerator) -> [UInt8] {
        (0..<Int.random(in: range, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }
}
