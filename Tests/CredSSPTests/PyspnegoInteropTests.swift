import CredSSP
import Foundation
import GSS
import NIOSSL
import Testing
import WindowsStatus

/// Interop with pyspnego's CredSSP (Tests/CredSSPTests/peer/*.py) over loopback TCP, Kerberos inside SPNEGO.
/// Needs `pip install 'pyspnego[kerberos]'`; fails (never skips) without it.
@Suite struct PyspnegoInteropTests {
    static let versions: [(Int, TLSVersion)] = [(6, .tlsv13), (6, .tlsv12), (5, .tlsv13), (4, .tlsv12), (3, .tlsv13), (2, .tlsv12)]

    /// What a run against a pyspnego peer produced: our side's result and the peer's last line.
    struct Run<Value> {
        var result: Result<Value, CredSSPError>?
        var peer: String
    }

    /// Runs `client` against `credssp_server.py` (extra `options`, e.g. `--announce 3`).
    static func againstPyspnegoServer(_ client: CredSSPClient, host: String, options: [String] = [],
                                      environment: [String: String]) async throws -> Run<Void> {
        let peer = try PeerProcess(script: "credssp_server.py", arguments: [host, "TERMSRV"] + options,
                                   environment: environment)
        let (port, first) = await peer.port()
        guard let port else { return Run(result: nil, peer: "\(first) — \(PeerProcess.missing)") }
        let result = try await LoopbackTransport.runClient(client, port: port)
        return Run(result: result, peer: await peer.line() ?? "(no output)")
    }

    /// Runs `server` for one `credssp_client.py` connection (`arguments` after the port).
    static func fromPyspnegoClient(_ server: CredSSPServer, arguments: [String],
                                   environment: [String: String]) async throws -> Run<CredSSPCredentials> {
        let (listener, port) = try await LoopbackTransport.listen()
        let peer = try PeerProcess(script: "credssp_client.py", arguments: ["\(port)"] + arguments, environment: environment)
        let result = try await LoopbackTransport.serve(server, on: listener)
        return Run(result: result, peer: await peer.line() ?? "(no output) — \(PeerProcess.missing)")
    }

    static func kerberosClient(_ service: KerberosService, policy: CredSSPPolicy = CredSSPPolicy()) async throws -> CredSSPClient {
        try CredSSPClient(credentials: CredSSPCredentials(domain: "MIGRATION", user: service.user, password: service.password),
                          inner: try await service.initiator(), verification: .insecureAcceptAny, policy: policy)
    }

    static func clientArguments(_ service: KerberosService) -> [String] {
        [service.userPrincipal, service.password, service.host, "TERMSRV"]
    }

    /// The JSON fields of the pyspnego server's `RESULT {...}` line.
    static func fields(_ line: String) throws -> [String: Any] {
        guard line.hasPrefix("RESULT ") else { return [:] }
        return try JSONSerialization.jsonObject(with: Data(line.dropFirst(7).utf8)) as? [String: Any] ?? [:]
    }

    @Test(arguments: versions)
    func swiftClientToPyspnegoServer(version: Int, tls: TLSVersion) async throws {
        let service = try await KerberosService.make()
        let client = try await Self.kerberosClient(
            service, policy: CredSSPPolicy(minimumVersion: 2, version: version, maximumTLSVersion: tls))
        let run = try await Self.againstPyspnegoServer(client, host: service.host, environment: service.serverEnvironment)
        #expect(run.result?.failure == nil, "\(String(describing: run.result))")
        #expect(run.peer.hasPrefix("RESULT "), "\(run.peer)")
        let fields = try Self.fields(run.peer)
        #expect(fields["domain"] as? String == "MIGRATION")
        #expect(fields["user"] as? String == service.user)
        #expect(fields["password"] as? String == service.password)
        #expect(fields["version"] as? Int == version)
        #expect(await client.tlsVersion == tls)
    }

    @Test(arguments: versions)
    func pyspnegoClientToSwiftServer(version: Int, tls: TLSVersion) async throws {
        let service = try await KerberosService.make()
        let server = try service.server(policy: CredSSPPolicy(minimumVersion: 2, version: version, maximumTLSVersion: tls))
        let run = try await Self.fromPyspnegoClient(server, arguments: Self.clientArguments(service),
                                                    environment: service.realm.environment)
        #expect(run.peer == "DONE \(version)", "\(run.peer)")
        let credentials = try #require(try run.result?.get())
        #expect(credentials.user == service.userPrincipal)
        #expect(credentials.password == service.password)
        #expect(await server.negotiatedVersion == version)
        #expect(await server.tlsVersion == tls)
    }

    // MARK: Downgrade

    @Test func pyspnegoClientRefusesAServerBelowItsMinimum() async throws {
        let service = try await KerberosService.make()
        let server = try service.server(policy: CredSSPPolicy(minimumVersion: 3, version: 3))
        let run = try await Self.fromPyspnegoClient(server, arguments: Self.clientArguments(service) + ["--min", "6"],
                                                    environment: service.realm.environment)
        #expect(run.peer.hasPrefix("ERROR") && run.peer.contains("minimum"), "\(run.peer)")
        #expect(run.result?.failure?.kind == .transport, "\(String(describing: run.result))")
    }

    /// A pyspnego server that announces version 3 (like an unpatched Windows) meets our default minimum of 6.
    @Test func swiftClientRefusesAnOldPyspnegoServer() async throws {
        let service = try await KerberosService.make()
        let client = try await Self.kerberosClient(service)
        let run = try await Self.againstPyspnegoServer(client, host: service.host, options: ["--announce", "3"],
                                                       environment: service.serverEnvironment)
        let error = try #require(run.result?.failure, "\(run.peer)")
        #expect(error.kind == .versionRefused)
        #expect(error.status == .unsupportedFunction)
        #expect(error.explanation.contains("version 3"))
        #expect(!run.peer.hasPrefix("RESULT"), "\(run.peer)")
    }

    /// A pyspnego client that announces version 3: our server refuses and tells it with errorCode (v3 has one).
    @Test func swiftServerRefusesAnOldPyspnegoClient() async throws {
        let service = try await KerberosService.make()
        let server = try service.server(policy: CredSSPPolicy())
        let run = try await Self.fromPyspnegoClient(server, arguments: Self.clientArguments(service) + ["--announce", "3"],
                                                    environment: service.realm.environment)
        let error = try #require(run.result?.failure, "\(run.peer)")
        #expect(error.kind == .versionRefused)
        #expect(error.status == .unsupportedFunction)
        #expect(run.peer.hasPrefix("ERROR ") && run.peer.contains(" 0x80090302:"), "\(run.peer)")
    }

    // MARK: Tampered pubKeyAuth

    @Test func swiftServerRefusesATamperedPubKeyAuth() async throws {
        let service = try await KerberosService.make()
        let server = try service.server(policy: CredSSPPolicy())
        let run = try await Self.fromPyspnegoClient(server, arguments: Self.clientArguments(service) + ["--tamper"],
                                                    environment: service.realm.environment)
        let error = try #require(run.result?.failure, "\(run.peer)")
        #expect(error.kind == .publicKeyMismatch)
        #expect(error.status == .messageAltered)
        #expect(run.peer.hasPrefix("ERROR ") && run.peer.contains(" 0x8009030F:"), "\(run.peer)")
    }

    @Test func swiftClientRefusesATamperedPubKeyAuth() async throws {
        let service = try await KerberosService.make()
        let client = try await Self.kerberosClient(service)
        let run = try await Self.againstPyspnegoServer(client, host: service.host, options: ["--tamper"],
                                                       environment: service.serverEnvironment)
        let error = try #require(run.result?.failure, "\(run.peer)")
        #expect(error.kind == .publicKeyMismatch)
        #expect(error.status == .messageAltered)
        #expect(error.explanation.contains("man in the middle"))
        #expect(!run.peer.hasPrefix("RESULT"), "\(run.peer)")
    }

    @Test func pyspnegoServerRefusesOurTamperedPubKeyAuth() async throws {
        let service = try await KerberosService.make()
        let client = try CredSSPClient(
            credentials: CredSSPCredentials(domain: "MIGRATION", user: service.user, password: service.password),
            inner: TamperingAuthenticator(try await service.initiator()), verification: .insecureAcceptAny)
        let run = try await Self.againstPyspnegoServer(client, host: service.host, environment: service.serverEnvironment)
        #expect(run.peer.hasPrefix("ERROR BadBindingsError"), "\(run.peer)")
        #expect(run.result?.failure?.kind == .transport, "\(String(describing: run.result))")
    }
}

/// Wraps an inner authenticator and corrupts the first message it wraps (the client's pubKeyAuth).
final class TamperingAuthenticator: CredSSPInnerAuthenticator {
    private let inner: any CredSSPInnerAuthenticator
    private var tampered = false

    init(_ inner: any CredSSPInnerAuthenticator) { self.inner = inner }

    var isComplete: Bool { inner.isComplete }
    func step(_ token: [UInt8]?) throws -> [UInt8]? { try inner.step(token) }
    func unwrap(_ message: [UInt8]) throws -> [UInt8] { try inner.unwrap(message) }
    func dispose() { inner.dispose() }
    func windowsStatus(for error: any Error) -> WindowsStatus { inner.windowsStatus(for: error) }

    func wrap(_ message: [UInt8]) throws -> [UInt8] {
        guard !tampered, !message.isEmpty else { return try inner.wrap(message) }
        tampered = true
        return try inner.wrap([message[0] ^ 0xFF] + message.dropFirst())
    }
}
