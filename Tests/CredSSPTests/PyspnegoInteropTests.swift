import CredSSP
import Foundation
import GSS
import NIOCore
import NIOPosix
import NIOSSL
import TestRealm
import Testing

/// Interop with pyspnego's CredSSP (Tests/CredSSPTests/peer/*.py) over loopback TCP, Kerberos inside SPNEGO.
/// Needs `pip install 'pyspnego[kerberos]'`; fails (never skips) without it.
@Suite struct PyspnegoInteropTests {
    static let peerDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("peer").path

    /// A running peer script and its output lines.
    final class Peer: @unchecked Sendable {
        let process = Process()
        let output = Pipe()
        private var buffer = Data()

        init(script: String, arguments: [String], environment: [String: String]) throws {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", "\(PyspnegoInteropTests.peerDirectory)/\(script)"] + arguments
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.run()
        }

        /// The next output line (blocking read; the script times out by itself after 60 s).
        func line() -> String? {
            while true {
                if let newline = buffer.firstIndex(of: 0x0A) {
                    let text = String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self)
                    buffer = Data(buffer[(newline + 1)...])
                    return text
                }
                let chunk = output.fileHandleForReading.availableData
                if chunk.isEmpty { return nil }
                buffer.append(chunk)
            }
        }

        deinit { if process.isRunning { process.terminate() } }
    }

    @Test(arguments: [(6, TLSVersion.tlsv13), (6, .tlsv12), (5, .tlsv13), (4, .tlsv12), (3, .tlsv13), (2, .tlsv12)])
    func swiftClientToPyspnegoServer(version: Int, tls: TLSVersion) async throws {
        let realm = try await TestRealm.shared()
        let host = "host-\(CredSSPKerberosTests.unique()).test"
        let service = "TERMSRV/\(host)@\(realm.name)"
        try await realm.addPrincipal(service, password: nil)
        let keytab = try await realm.exportKeytab([service])
        let user = "user-\(CredSSPKerberosTests.unique())"
        let password = "pw-\(CredSSPKerberosTests.unique())"
        try await realm.addPrincipal("\(user)@\(realm.name)", password: password)

        let peer = try Peer(script: "credssp_server.py", arguments: [host, "TERMSRV"],
                            environment: realm.environment.merging(["KRB5_KTNAME": "FILE:" + keytab]) { $1 })
        let first = peer.line() ?? "(no output)"
        guard first.hasPrefix("PORT "), let port = Int(first.dropFirst(5)) else {
            Issue.record("pyspnego peer did not start: \(first). Install it with: pip install 'pyspnego[kerberos]'")
            return
        }
        let userCredential = try await GSSCredential.acquire(name: GSSName(principal: "\(user)@\(realm.name)"),
                                                             password: password, mechanisms: [.spnego])
        let client = try CredSSPClient(
            credentials: CredSSPCredentials(domain: "MIGRATION", user: user, password: password),
            inner: GSSInitiatorAuthenticator(target: try GSSName("TERMSRV@\(host)", kind: .hostBasedService),
                                             credential: userCredential),
            verification: .insecureAcceptAny,
            policy: CredSSPPolicy(minimumVersion: 2, version: version, maximumTLSVersion: tls))

        let connection = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { CredSSPLoopbackTests.framed($0) }
        try await connection.executeThenClose { input, output in
            guard case .send(let hello) = try await client.step(nil) else { return }
            try await output.write(ByteBuffer(bytes: hello))
            for try await frame in input {
                switch try await client.step(Array(frame.readableBytesView)) {
                case .send(let bytes): try await output.write(ByteBuffer(bytes: bytes))
                case .finished(let bytes):
                    try await output.write(ByteBuffer(bytes: bytes))
                    return
                }
            }
        }
        let result = peer.line() ?? "(no output)"
        #expect(result.hasPrefix("RESULT "), "\(result)")
        guard result.hasPrefix("RESULT ") else { return }
        let fields = try JSONSerialization.jsonObject(with: Data(result.dropFirst(7).utf8)) as? [String: Any]
        #expect(fields?["domain"] as? String == "MIGRATION")
        #expect(fields?["user"] as? String == user)
        #expect(fields?["password"] as? String == password)
        #expect(fields?["version"] as? Int == version)
        #expect(await client.tlsVersion == tls)
    }

    @Test(arguments: [(6, TLSVersion.tlsv13), (6, .tlsv12), (5, .tlsv13), (4, .tlsv12), (3, .tlsv13), (2, .tlsv12)])
    func pyspnegoClientToSwiftServer(version: Int, tls: TLSVersion) async throws {
        let realm = try await TestRealm.shared()
        let host = "host-\(CredSSPKerberosTests.unique()).test"
        let service = "TERMSRV/\(host)@\(realm.name)"
        try await realm.addPrincipal(service, password: nil)
        let keytab = try await realm.exportKeytab([service])
        let user = "user-\(CredSSPKerberosTests.unique())@\(realm.name)"
        let password = "pw-\(CredSSPKerberosTests.unique())"
        try await realm.addPrincipal(user, password: password)
        let acceptorCredential = try GSSCredential.acquire(name: GSSName(principal: service), usage: .accept,
                                                           mechanisms: [.spnego], store: GSSCredentialStore(keytab: "FILE:" + keytab))
        let certs = try TestCertificates.get()
        let server = try CredSSPServer(certificateChain: certs.selfSignedChain, privateKey: certs.selfSignedKey,
                                       inner: GSSAcceptorAuthenticator(credential: acceptorCredential),
                                       policy: CredSSPPolicy(minimumVersion: 2, version: version, maximumTLSVersion: tls))
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0) { CredSSPLoopbackTests.framed($0) }
        let port = try #require(listener.channel.localAddress?.port)
        let peer = try Peer(script: "credssp_client.py", arguments: ["\(port)", user, password, host, "TERMSRV"],
                            environment: realm.environment)
        let received: CredSSPCredentials? = try await listener.executeThenClose { inbound in
            for try await connection in inbound {
                return try await connection.executeThenClose { input, output in
                    for try await frame in input {
                        switch try await server.step(Array(frame.readableBytesView)) {
                        case .send(let bytes): try await output.write(ByteBuffer(bytes: bytes))
                        case .finished(let credentials): return credentials
                        }
                    }
                    return nil
                }
            }
            return nil
        }
        let result = peer.line() ?? "(no output)"
        #expect(result == "DONE \(version)", "\(result) — pyspnego missing? pip install 'pyspnego[kerberos]'")
        let credentials = try #require(received)
        #expect(credentials.user == user)
        #expect(credentials.password == password)
        #expect(await server.negotiatedVersion == version)
        #expect(await server.tlsVersion == tls)
    }

    @Test func pyspnegoClientRefusesAServerBelowItsMinimum() async throws {
        let realm = try await TestRealm.shared()
        let host = "host-\(CredSSPKerberosTests.unique()).test"
        let service = "TERMSRV/\(host)@\(realm.name)"
        try await realm.addPrincipal(service, password: nil)
        let keytab = try await realm.exportKeytab([service])
        let user = "user-\(CredSSPKerberosTests.unique())@\(realm.name)"
        let password = "pw-\(CredSSPKerberosTests.unique())"
        try await realm.addPrincipal(user, password: password)
        let acceptorCredential = try GSSCredential.acquire(name: GSSName(principal: service), usage: .accept,
                                                           mechanisms: [.spnego], store: GSSCredentialStore(keytab: "FILE:" + keytab))
        let certs = try TestCertificates.get()
        let server = try CredSSPServer(certificateChain: certs.selfSignedChain, privateKey: certs.selfSignedKey,
                                       inner: GSSAcceptorAuthenticator(credential: acceptorCredential),
                                       policy: CredSSPPolicy(minimumVersion: 3, version: 3))
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0) { CredSSPLoopbackTests.framed($0) }
        let port = try #require(listener.channel.localAddress?.port)
        let peer = try Peer(script: "credssp_client.py", arguments: ["\(port)", user, password, host, "TERMSRV", "6"],
                            environment: realm.environment)
        let received: CredSSPCredentials? = try await listener.executeThenClose { inbound in
            for try await connection in inbound {
                return try await connection.executeThenClose { input, output in
                    for try await frame in input {
                        switch try await server.step(Array(frame.readableBytesView)) {
                        case .send(let bytes): try await output.write(ByteBuffer(bytes: bytes))
                        case .finished(let credentials): return credentials
                        }
                    }
                    return nil
                }
            }
            return nil
        }
        let result = peer.line() ?? "(no output)"
        #expect(result.hasPrefix("ERROR") && result.contains("minimum"), "\(result)")
        #expect(received == nil)
    }
}
