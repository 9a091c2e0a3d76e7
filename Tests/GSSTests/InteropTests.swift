import Foundation
import GSS
import Testing

/// The framing of MIT's sample programs (`gss-misc.c`, protocol v2): one flags byte, a 4-byte
/// big-endian length, the token.
enum SampleToken {
    static let noop: UInt8 = 1 << 0
    static let context: UInt8 = 1 << 1
    static let data: UInt8 = 1 << 2
    static let mic: UInt8 = 1 << 3
    static let contextNext: UInt8 = 1 << 4
    static let wrapped: UInt8 = 1 << 5
    static let encrypted: UInt8 = 1 << 6
    static let sendMIC: UInt8 = 1 << 7

    static func send(_ socket: LoopbackSocket, flags: UInt8, _ token: [UInt8]) throws {
        try socket.write([flags])
        try socket.sendFrame(token)
    }

    static func receive(_ socket: LoopbackSocket) throws -> (flags: UInt8, token: [UInt8]) {
        let flags = try socket.read(count: 1)[0]
        return (flags, try socket.receiveFrame())
    }
}

/// Proof 2: interoperability with MIT's `gss-server` and `gss-client` (krb5-gss-samples).
@Suite("GSS interop with MIT gss-server / gss-client", .serialized)
struct InteropTests {
    /// Starts a program with the realm's environment plus `extra`; output goes to files.
    static func launch(_ path: String, _ arguments: [String], extra: [String: String] = [:]) async throws
        -> (process: Process, output: URL) {
        let realm = try await GSSFixture.realm()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(realm.environment) { $1 }.merging(extra) { $1 }
        let output = URL(fileURLWithPath: realm.directory).appendingPathComponent("out-\(GSSFixture.unique()).txt")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        let handle = try FileHandle(forWritingTo: output)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return (process, output)
    }

    @Test("Swift initiator → gss-server: context, wrapped message, MIC back", arguments: [false, true])
    func swiftToGSSServer(spnego: Bool) async throws {
        let service = try await GSSFixture.service("gsstest")
        let user = try await GSSFixture.user()
        let port = try LoopbackListener.freePort()
        let keytabPath = String(service.keytab.dropFirst("FILE:".count))
        let (server, output) = try await Self.launch("/usr/bin/gss-server",
                                                     ["-port", "\(port)", "-keytab", keytabPath, service.hostBased])
        // gss-server does not stop on SIGTERM: end it (and only it) by its own PID.
        defer { kill(server.processIdentifier, SIGKILL) }

        let verified = try await onThread { () throws -> Bool in
            // gss-server has no readiness signal: retry the connection for a while.
            var socket: LoopbackSocket?
            for _ in 0..<100 where socket == nil {
                socket = try? LoopbackSocket.connect(port: port)
                if socket == nil { usleep(50_000) }
            }
            guard let socket else { throw SocketError("gss-server did not listen on \(port)") }
            let mechanisms: [GSSMechanism] = spnego ? [.kerberos, .spnego] : [.kerberos]
            var initiator = GSSInitiatorContext(target: try service.targetName(),
                                                credential: try user.credential(mechanisms: mechanisms),
                                                mechanism: spnego ? .spnego : .kerberos)
            try SampleToken.send(socket, flags: SampleToken.noop | SampleToken.contextNext, [])
            try establish(&initiator, send: { try SampleToken.send(socket, flags: SampleToken.context, $0) },
                          receive: {
                              let (flags, token) = try SampleToken.receive(socket)
                              guard flags & SampleToken.context != 0 else { throw SocketError("unexpected flags \(flags)") }
                              return token
                          })
            let message = Array("Live migration of vm01 from hosta to hostb".utf8)
            try SampleToken.send(socket, flags: SampleToken.data | SampleToken.wrapped | SampleToken.encrypted
                                 | SampleToken.sendMIC, try initiator.wrap(message))
            let (flags, mic) = try SampleToken.receive(socket)
            guard flags & SampleToken.mic != 0 else { throw SocketError("expected a MIC, flags \(flags)") }
            try initiator.verifyMIC(message, mic: mic)
            // Our side protected the messages with KerberosCrypto; gss-server (MIT) accepted them.
            guard case .kerberosCrypto = initiator.protectionPath else {
                throw SocketError("expected the fast path, got \(initiator.protectionPath)")
            }
            try SampleToken.send(socket, flags: SampleToken.noop, [])
            return true
        }
        #expect(verified)
        // gss-server logs the client after the exchange; give it a moment to flush.
        var log = ""
        for _ in 0..<50 {
            log = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
            if log.contains("Accepted connection") { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(log.contains("Accepted connection: \"\(user.principal)\""), "gss-server said: \(log)")
    }

    @Test("gss-client → Swift acceptor: context, unwrap, MIC back, 'Signature verified'", arguments: [false, true])
    func gssClientToSwift(spnego: Bool) async throws {
        let service = try await GSSFixture.service("gsstest")
        let user = try await GSSFixture.user()
        let listener = try LoopbackListener()
        let message = "hello from gss-client \(GSSFixture.unique())"
        let acceptorTask = Task {
            try await onThread { () throws -> (peer: String, messages: [String], flags: GSSContextFlags) in
                let socket = try listener.accept()
                let mechanisms: [GSSMechanism] = spnego ? [.kerberos, .spnego] : [.kerberos]
                var acceptor = GSSAcceptorContext(credential: try service.acceptorCredential(mechanisms: mechanisms))
                let first = try SampleToken.receive(socket)
                guard first.flags & SampleToken.noop != 0, first.flags & SampleToken.contextNext != 0 else {
                    throw SocketError("expected NOOP|CONTEXT_NEXT, got \(first.flags)")
                }
                try establish(&acceptor, send: { try SampleToken.send(socket, flags: SampleToken.context, $0) },
                              receive: { try SampleToken.receive(socket).token })
                var messages: [String] = []
                while true {
                    let (flags, token) = try SampleToken.receive(socket)
                    if flags & SampleToken.noop != 0 { break }
                    let plain = flags & SampleToken.wrapped != 0 ? try acceptor.unwrap(token).message : token
                    messages.append(String(decoding: plain, as: UTF8.self))
                    if flags & SampleToken.sendMIC != 0 {
                        try SampleToken.send(socket, flags: SampleToken.mic, try acceptor.getMIC(plain))
                    } else {
                        try SampleToken.send(socket, flags: SampleToken.noop, [])
                    }
                }
                // MIT's gss-client verified our MICs over messages we unwrapped with KerberosCrypto.
                guard case .kerberosCrypto = acceptor.protectionPath else {
                    throw SocketError("expected the fast path, got \(acceptor.protectionPath)")
                }
                return (acceptor.peerName?.description ?? "", messages, acceptor.grantedFlags)
            }
        }
        var arguments = ["-port", "\(listener.port)", "-mcount", "2"]
        if spnego { arguments.append("-spnego") }
        arguments += ["127.0.0.1", service.hostBased, message]
        let (client, output) = try await Self.launch("/usr/bin/gss-client", arguments, extra: ["KRB5CCNAME": user.ccache])
        try await onThread { client.waitUntilExit() }
        let result = try await acceptorTask.value
        let log = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        #expect(client.terminationStatus == 0, "gss-client said: \(log)")
        #expect(log.contains("Signature verified"), "gss-client said: \(log)")
        #expect(result.peer == user.principal)
        #expect(result.messages == [message, message])
        #expect(result.flags.contains(.mutual))
    }
}
