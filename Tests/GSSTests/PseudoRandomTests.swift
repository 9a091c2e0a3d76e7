import Foundation
import GSS
import Testing

/// `GSS_Pseudo_random` (RFC 4401/4402) on established Kerberos contexts: both ends of one context
/// agree (MIT on both sides), an independent implementation (python-gssapi's lucid keys +
/// `cryptography`, Tests/GSSTests/peer/krb5_prf.py) on the other end of the SAME context agrees,
/// and bad requests are typed errors.
@Suite("GSS_Pseudo_random (RFC 4401)")
struct PseudoRandomTests {
    static let enctypes: [Int32] = [17, 18, 19, 20]
    static let input = Array("MIGA suite 2 known-answer \u{00e9}".utf8) + [0, 1, 2, 0xFF]

    @Test("initiator and acceptor of one context derive the same bytes; FULL ≠ PARTIAL; prefix-stable",
          arguments: enctypes)
    func bothEndsAgree(enctype: Int32) async throws {
        let pair = try FastPair(try await FastPair.endpoints(), enctype: enctype, fastInitiator: true, fastAcceptor: true)
        for key in [GSSPRFKey.full, .partial] {
            let a = try pair.initiator.pseudoRandom(prfKey: key, input: Self.input, outputLength: 64)
            let b = try pair.acceptor.pseudoRandom(prfKey: key, input: Self.input, outputLength: 64)
            #expect(a == b)
            #expect(a.count == 64)
            let short = try pair.acceptor.pseudoRandom(prfKey: key, input: Self.input, outputLength: 20)
            #expect(short == Array(a.prefix(20)))
            let other = try pair.initiator.pseudoRandom(prfKey: key, input: Self.input + [0], outputLength: 64)
            #expect(other != a)
        }
        // MIT asserts an acceptor subkey for mutual authentication: the FULL key is not the PARTIAL one.
        #expect(try pair.initiator.pseudoRandom(prfKey: .full, input: Self.input, outputLength: 32)
                != pair.initiator.pseudoRandom(prfKey: .partial, input: Self.input, outputLength: 32))
        // The PRF does not disturb the message sequence: wrap/unwrap still work afterwards.
        var p = pair
        let token = try p.initiator.wrap([1, 2, 3])
        #expect(try p.acceptor.unwrap(token).message == [1, 2, 3])
    }

    @Test("known answer: python peer's RFC 4402 PRF+ on the same context = MIT's gss_pseudo_random",
          arguments: enctypes)
    func pythonPeerAgrees(enctype: Int32) async throws {
        let (service, user) = try await FastPair.endpoints()
        let realm = try await GSSFixture.realm()
        let listener = try LoopbackListener()
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("peer/prf_initiator.py").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, "\(listener.port)", service.hostBased, "\(enctype)"]
        process.environment = ProcessInfo.processInfo.environment.merging(realm.environment) { $1 }
            .merging(["KRB5CCNAME": user.ccache, "PYTHONDONTWRITEBYTECODE": "1"]) { $1 }
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        let input = Self.input
        let results = try await onThread { () throws -> [(GSSPRFKey, Int, theirs: [UInt8], ours: [UInt8])] in
            let socket = try listener.accept()
            var acceptor = GSSAcceptorContext(credential: try service.acceptorCredential())
            try establish(&acceptor, send: { try socket.sendFrame($0) }, receive: { try socket.receiveFrame() })
            try socket.sendFrame(input)
            var out: [(GSSPRFKey, Int, theirs: [UInt8], ours: [UInt8])] = []
            for key in [GSSPRFKey.full, .partial] {
                for length in [1, 16, 33, 64] {
                    let theirs = try socket.receiveFrame()
                    out.append((key, length, theirs, try acceptor.pseudoRandom(prfKey: key, input: input, outputLength: length)))
                }
            }
            return out
        }
        process.waitUntilExit()
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 0, "python peer: \(stderr)")
        #expect(results.count == 8)
        for r in results {
            #expect(r.theirs.count == r.1)
            #expect(r.theirs == r.ours, "\(r.0) \(r.1) bytes, enctype \(enctype)")
        }
    }

    @Test("bad requests are typed errors: no context yet, zero or huge lengths")
    func badRequests() async throws {
        let (service, user) = try await FastPair.endpoints()
        let initiator = GSSInitiatorContext(target: try service.targetName(), credential: try user.credential(), flags: .standard)
        let early = #expect(throws: GSSError.self) { try initiator.pseudoRandom(input: [1], outputLength: 16) }
        #expect(early?.major == .noContext)
        let pair = try FastPair((service, user), enctype: 18, fastInitiator: true, fastAcceptor: true)
        for length in [0, -1, GSSAcceptorContext.maximumPseudoRandomLength + 1] {
            let e = #expect(throws: GSSError.self) { try pair.acceptor.pseudoRandom(input: [1], outputLength: length) }
            #expect(e?.operation == .pseudoRandom)
        }
        #expect(try pair.acceptor.pseudoRandom(input: [], outputLength: 16).count == 16)
    }
}
