import Foundation
import GSS
import TestSupport
import Testing
import WindowsStatus

/// Proof 1: a Swift initiator and a Swift acceptor over a real TCP connection on 127.0.0.1.
@Suite("GSS loopback over TCP")
struct LoopbackTests {
    struct ServerReport: Sendable {
        var peer = ""
        var acceptorFlags: GSSContextFlags = []
        var firstMessage: GSSUnwrapped?
        var signedOnly: GSSUnwrapped?
        var micVerified = false
        var replayError: GSSError?
        var tamperError: GSSError?
        var tamperedMICError: GSSError?
        var iovMessage: [UInt8] = []
        var iovConfidential = false
    }

    @Test("mutual auth, names, wrap/unwrap and MIC both ways, tamper and replay detected")
    func loopback() async throws {
        let service = try await GSSFixture.service("Microsoft Virtual System Migration Service")
        let user = try await GSSFixture.user()
        let listener = try LoopbackListener()
        let large = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }

        let server = Task {
            try await onThread { () throws -> ServerReport in
                let connection = try listener.accept()
                var report = ServerReport()
                var acceptor = GSSAcceptorContext(credential: try service.acceptorCredential())
                try establish(&acceptor, send: connection.sendFrame, receive: connection.receiveFrame)
                report.peer = acceptor.peerName?.description ?? ""
                report.acceptorFlags = acceptor.grantedFlags
                // 1. encrypted message, encrypted reply
                report.firstMessage = try acceptor.unwrap(try connection.receiveFrame())
                try connection.sendFrame(try acceptor.wrap(Array("hello from B".utf8)))
                // 2. MIC from A, MIC from B
                let message = try connection.receiveFrame()
                let mic = try connection.receiveFrame()
                try acceptor.verifyMIC(message, mic: mic)
                report.micVerified = true
                let reply = Array("signed by B".utf8)
                try connection.sendFrame(reply)
                try connection.sendFrame(try acceptor.getMIC(reply))
                // 3. integrity only
                report.signedOnly = try acceptor.unwrap(try connection.receiveFrame())
                // 4. the same token twice (the copy arrives as the next frame)
                let token = try connection.receiveFrame()
                _ = try acceptor.unwrap(token)
                let replayed = try connection.receiveFrame()
                report.replayError = gssError { () throws(GSSError) in _ = try acceptor.unwrap(replayed) }
                // 5. 1 MiB wrapped in place, unwrapped in place
                var stream = try connection.receiveFrame()
                let result = try acceptor.unwrapInPlace(&stream)
                report.iovMessage = Array(stream[result.range])
                report.iovConfidential = result.confidential
                // 6. a tampered token, then a tampered MIC (last: the receiver's sequence now has a gap)
                let tampered = try connection.receiveFrame()
                report.tamperError = gssError { () throws(GSSError) in _ = try acceptor.unwrap(tampered) }
                let signed = try connection.receiveFrame()
                let badMIC = try connection.receiveFrame()
                report.tamperedMICError = gssError { () throws(GSSError) in try acceptor.verifyMIC(signed, mic: badMIC) }
                try connection.sendFrame(Array("done".utf8))
                return report
            }
        }

        let clientResult = await asyncResult { try await onThread { () throws -> (flags: GSSContextFlags, acceptorName: String,
                                                                 initiatorName: String, reply: GSSUnwrapped,
                                                                 lifetime: Duration?) in
            let connection = try LoopbackSocket.connect(port: listener.port)
            var initiator = GSSInitiatorContext(target: try service.targetName(), credential: try user.credential())
            try establish(&initiator, send: connection.sendFrame, receive: connection.receiveFrame)
            let names = try initiator.inquire()
            try connection.sendFrame(try initiator.wrap(Array("hello from A".utf8)))
            let reply = try initiator.unwrap(try connection.receiveFrame())
            let message = Array("signed by A".utf8)
            try connection.sendFrame(message)
            try connection.sendFrame(try initiator.getMIC(message))
            let theirs = try connection.receiveFrame()
            try initiator.verifyMIC(theirs, mic: try connection.receiveFrame())
            try connection.sendFrame(try initiator.wrap(Array("integrity only".utf8), encrypt: false))
            let once = try initiator.wrap(Array("replay me".utf8))
            try connection.sendFrame(once)
            try connection.sendFrame(once)
            var data = large
            let parts = try initiator.wrapInPlace(&data)
            #expect(data != large, "data encrypted in place")
            try connection.sendFrame(parts.header + data + parts.padding + parts.trailer)
            var tampered = try initiator.wrap(Array("tamper with me".utf8))
            tampered[tampered.count - 3] ^= 0x01
            try connection.sendFrame(tampered)
            let signed = Array("signed, then altered".utf8)
            var mic = try initiator.getMIC(signed)
            mic[mic.count - 1] ^= 0x80
            try connection.sendFrame(signed)
            try connection.sendFrame(mic)
            _ = try connection.receiveFrame()
            return (initiator.grantedFlags, names.acceptor?.description ?? "", names.initiator.description,
                    reply, initiator.lifetime)
        } }
        let report = try await server.value
        let clientReport = try clientResult.get()

        #expect(clientReport.flags.isSuperset(of: GSSContextFlags.standard))
        #expect(report.acceptorFlags.contains(.mutual))
        #expect(report.peer == user.principal)
        #expect(clientReport.initiatorName == user.principal)
        #expect(clientReport.acceptorName == service.principal)
        #expect(clientReport.lifetime.map { $0 > .zero } == true)
        #expect(report.firstMessage?.message == Array("hello from A".utf8))
        #expect(report.firstMessage?.confidential == true)
        #expect(clientReport.reply.message == Array("hello from B".utf8))
        #expect(clientReport.reply.confidential)
        #expect(report.micVerified)
        #expect(report.signedOnly?.message == Array("integrity only".utf8))
        #expect(report.signedOnly?.confidential == false)
        #expect(report.replayError?.windowsStatus == .outOfSequence, "\(String(describing: report.replayError))")
        #expect(report.replayError?.major.supplementaryNames.contains("GSS_S_DUPLICATE_TOKEN") == true)
        #expect(report.tamperError?.windowsStatus == .messageAltered, "\(String(describing: report.tamperError))")
        #expect(report.tamperedMICError?.windowsStatus == .messageAltered)
        #expect(report.iovMessage == large)
        #expect(report.iovConfidential)
    }

    @Test("in-memory: SPNEGO context, channel bindings, wrap size limit, IOV round trip")
    func spnegoAndBindings() async throws {
        let service = try await GSSFixture.service()
        let user = try await GSSFixture.user()
        try await onThread {
            let bindings = GSSChannelBindings(applicationData: Array("tls-server-end-point:abc".utf8))
            let both: [GSSMechanism] = [.kerberos, .spnego]
            var initiator = GSSInitiatorContext(target: try service.targetName(),
                                                credential: try user.credential(mechanisms: both),
                                                mechanism: .spnego, channelBindings: bindings)
            var acceptor = GSSAcceptorContext(credential: try service.acceptorCredential(mechanisms: both),
                                              channelBindings: bindings)
            try InMemoryEstablishment.establish(&initiator, &acceptor)
            #expect(initiator.mechanism == .spnego)
            #expect(acceptor.mechanism == .spnego || acceptor.mechanism == .kerberos)
            #expect(acceptor.peerName?.description == user.principal)
            let limit = try initiator.wrapSizeLimit(maximumTokenSize: 65536)
            #expect(limit > 65000 && limit < 65536)
            let wrapped = try initiator.wrap([UInt8](repeating: 7, count: limit))
            #expect(wrapped.count <= 65536)
            #expect(try acceptor.unwrap(wrapped).message.count == limit)
            // IOV wrap by the acceptor, plain unwrap by the initiator (same wire format).
            var data = Array("in place".utf8)
            let parts = try acceptor.wrapInPlace(&data)
            #expect(try initiator.unwrap(parts.header + data + parts.padding + parts.trailer).message == Array("in place".utf8))
        }
    }

    @Test("mismatched channel bindings are refused with SEC_E_BAD_BINDINGS")
    func badBindings() async throws {
        let service = try await GSSFixture.service()
        let user = try await GSSFixture.user()
        try await onThread {
            var initiator = GSSInitiatorContext(target: try service.targetName(), credential: try user.credential(),
                                                channelBindings: GSSChannelBindings(applicationData: [1, 2, 3]))
            var acceptor = GSSAcceptorContext(credential: try service.acceptorCredential(),
                                              channelBindings: GSSChannelBindings(applicationData: [4, 5, 6]))
            let error = #expect(throws: GSSError.self) { try InMemoryEstablishment.establish(&initiator, &acceptor) }
            #expect(error?.windowsStatus == .badBindings, "\(String(describing: error))")
            #expect(error?.operation == .acceptSecContext)
        }
    }
}

@Suite("GSS in place")
struct InPlaceTests {
    @Test("wrapInPlace / unwrapInPlace round trip, sizes 0…")
    func roundTrip() async throws {
        let service = try await GSSFixture.service()
        let user = try await GSSFixture.user()
        try await onThread {
            var initiator = GSSInitiatorContext(target: try service.targetName(), credential: try user.credential())
            var acceptor = GSSAcceptorContext(credential: try service.acceptorCredential())
            try InMemoryEstablishment.establish(&initiator, &acceptor)
            for size in [1, 15, 16, 17, 1000, 65536, 65537, 1 << 20] {
                let plain = (0..<size).map { UInt8(truncatingIfNeeded: $0) }
                var data = plain
                let parts = try initiator.wrapInPlace(&data)
                var token = parts.header + data + parts.padding + parts.trailer
                let result = try acceptor.unwrapInPlace(&token)
                #expect(Array(token[result.range]) == plain, "size \(size)")
                #expect(result.confidential)
            }
        }
    }
}
