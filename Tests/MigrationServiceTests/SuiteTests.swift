import Foundation
import GSS
@testable import MigrationService
import NIOCore
import Testing
import WindowsStatus

/// Protection suites (protocol version 2): negotiation with every kind of peer, suite 2's refusal of
/// truncated, dropped and wrong-suite frames, downgrades, rekeying, and the binding of the keys to
/// the migration. Replayed, reordered and altered frames on both suites: FaultTests.
@Suite("Protection suites", .serialized, .timeLimit(.minutes(3)))
struct SuiteTests {
    struct Peers: Sendable, CustomStringConvertible {
        let name: String
        var sourceSuites: [ProtectionSuite] = ProtectionSuite.preferred
        var sourceVersions: ClosedRange<UInt16> = 1...2
        var destinationSuites: [ProtectionSuite] = ProtectionSuite.preferred
        var destinationVersions: ClosedRange<UInt16> = 1...2
        let expected: (version: UInt16, suite: ProtectionSuite)
        var description: String { name }
    }

    static let matrix: [Peers] = [
        Peers(name: "both current → suite 2", expected: (2, .aes256GCM)),
        Peers(name: "source offers suite 1 only", sourceSuites: [.gssWrap], expected: (2, .gssWrap)),
        Peers(name: "destination offers suite 1 only", destinationSuites: [.gssWrap], expected: (2, .gssWrap)),
        Peers(name: "source prefers suite 1", sourceSuites: [.gssWrap, .aes256GCM], expected: (2, .gssWrap)),
        Peers(name: "version-1-only source", sourceVersions: 1...1, expected: (1, .gssWrap)),
        Peers(name: "version-1-only destination", destinationVersions: 1...1, expected: (1, .gssWrap)),
    ]

    static func settings(_ versions: ClosedRange<UInt16>, _ suites: [ProtectionSuite], rekey: UInt64 = AEADStreamProtection.defaultRekeyInterval) -> ProtocolSettings {
        ProtocolSettings(versions: versions, suites: suites, rekeyInterval: rekey)
    }

    @Test("negotiation: the suite both offer, suite 1 with a version-1 peer; the move arrives intact", arguments: matrix)
    func negotiation(_ peers: Peers) async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination()
        destination.setProtocol(Self.settings(peers.destinationVersions, peers.destinationSuites))
        // What the opening agreed, seen from the source's side.
        let credential = try await lab.userCredential()
        let target = try lab.target(destination)
        let name = try target.targetName()
        let agreed = try await FaultTests.raw(lab, destination) { conn throws(MigrationServiceError) -> SuiteNegotiation? in
            conn.settings = Self.settings(peers.sourceVersions, peers.sourceSuites)
            _ = try await KerberosHandshake.client(conn, purpose: .migration, target: name, credential: credential,
                                                   destinationName: target.fqdn)
            #expect((conn.aead != nil) == (peers.expected.suite == .aes256GCM))
            #expect((conn.protection != nil) == (peers.expected.suite == .gssWrap))
            return conn.negotiation
        }
        #expect(agreed?.version == peers.expected.version)
        #expect(agreed?.suite == peers.expected.suite)
        // And a whole move (SMB, two channels: the join path too).
        let bytes = try lab.createVM("vm-neg", size: 700_000)
        var options = MoveOptions(performance: .smb, channels: 2, chunkSize: 65536)
        options.suites = peers.sourceSuites
        options.protocolVersions = peers.sourceVersions
        _ = try await lab.source.move(vm: "vm-neg", to: target, credential: credential, options: options)
        await destination.stop()
        let arrived = lab.contents(lab.destinationVMs, "vm-neg") == bytes
        #expect(arrived)
    }

    @Test("suite 2 rekeys in lockstep (every 2 frames here); ends that disagree on it fail with SEC_E_MESSAGE_ALTERED")
    func rekey() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination()
        destination.setProtocol(Self.settings(1...2, ProtectionSuite.preferred, rekey: 2))
        let bytes = try lab.createVM("vm-rekey", size: 40 * 65536 + 123)
        var options = MoveOptions(performance: .tcpIP, chunkSize: 65536)
        options.rekeyInterval = 2
        _ = try await lab.source.move(vm: "vm-rekey", to: lab.target(destination), credential: lab.userCredential(), options: options)
        let arrived = lab.contents(lab.destinationVMs, "vm-rekey") == bytes
        #expect(arrived)
        // The source rekeys every 3 frames, the destination every 2: frame 2 opens with the wrong key.
        _ = try lab.createVM("vm-rekey2", size: 10 * 65536)
        options.rekeyInterval = 3
        let error = await #expect(throws: MigrationServiceError.self) {
            try await lab.source.move(vm: "vm-rekey2", to: lab.target(destination), credential: lab.userCredential(), options: options)
        }
        #expect(error?.status == .messageAltered, "\(String(describing: error))")
        #expect(await FaultTests.failure(of: "vm-rekey2", destination) == .messageAltered)
        await destination.stop()
        #expect(!lab.destinationVMs.contains("vm-rekey2"))
        #expect(lab.destinationVMs.stagingFiles().isEmpty)
    }

    @Test("suite 2: a truncated frame (SEC_E_MESSAGE_ALTERED), a dropped frame (SEC_E_OUT_OF_SEQUENCE), a suite-1 frame (SEC_E_ILLEGAL_MESSAGE)")
    func truncatedDroppedWrongSuite() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination()
        let endpoint = try requireEndpoint(destination)
        // Truncated: 100 bytes cut from the ciphertext, the length fixed up to match.
        let truncated = try await FaultTests.offered(lab, destination, vm: "vm-trunc", size: 3 * 65536) { conn throws(MigrationServiceError) -> MigrationServiceError? in
            var frame = try FaultTests.chunkFrame(conn, sequence: 0)
            frame[1].moveWriterIndex(to: frame[1].writerIndex - 100)
            let length = frame.reduce(0) { $0 + $1.readableBytes } - 4
            frame[0].setInteger(UInt32(length), at: frame[0].readerIndex)
            try await conn.write(frame)
            do throws(MigrationServiceError) { _ = try await conn.receive(); return nil } catch { return error }
        }
        #expect(truncated?.status == .messageAltered, "\(String(describing: truncated))")
        #expect(truncated?.kind == .integrity)
        #expect(await FaultTests.failure(of: "vm-trunc", destination) == .messageAltered)
        // Dropped: chunk 0's frame is never sent, chunk 1's arrives first.
        let dropped = try await FaultTests.offered(lab, destination, vm: "vm-drop", size: 3 * 65536) { conn throws(MigrationServiceError) -> MigrationServiceError? in
            _ = try FaultTests.chunkFrame(conn, sequence: 0)
            try await conn.write(FaultTests.chunkFrame(conn, sequence: 1))
            do throws(MigrationServiceError) { _ = try await conn.receive(); return nil } catch { return error }
        }
        #expect(dropped?.status == .outOfSequence, "\(String(describing: dropped))")
        // A suite-1 frame (kind 0x05) on a suite-2 connection.
        let wrong = try await FaultTests.offered(lab, destination, vm: "vm-wrong", size: 3 * 65536) { conn throws(MigrationServiceError) -> MigrationServiceError? in
            var frame = try FaultTests.chunkFrame(conn, sequence: 0)
            frame[0].setInteger(WireMessage.Kind.sealed.rawValue, at: frame[0].readerIndex + 4)
            try await conn.write(frame)
            do throws(MigrationServiceError) { _ = try await conn.receive(); return nil } catch { return error }
        }
        #expect(wrong?.status == .illegalMessage, "\(String(describing: wrong))")
        #expect(wrong?.detail.contains("suite 1 frame on a suite 2 connection") == true, "\(String(describing: wrong))")
        await destination.stop()
        for vm in ["vm-trunc", "vm-drop", "vm-wrong"] { await FaultTests.expectClean(lab, endpoint, vm: vm) }
    }

    /// A hand-made client opening: `sent` goes on the wire, the transcript (hence the channel
    /// bindings) is computed as if `claimed` had been sent; then Kerberos as usual.
    static func forgedOpening(_ lab: ServiceLab, _ destination: MigrationDestination,
                              forge: @escaping @Sendable (_ serverSuites: [UInt8]) -> (sent: SuiteOffer, claimed: SuiteOffer, ackSuites: [UInt8]?)) async throws -> MigrationServiceError? {
        let credential = try await lab.userCredential()
        let target = try lab.target(destination)
        let name = try target.targetName()
        return try await FaultTests.raw(lab, destination) { conn throws(MigrationServiceError) -> MigrationServiceError? in
            do throws(MigrationServiceError) {
                let hello = WireMessage.hello(minVersion: 1, maxVersion: 2, purpose: .migration, authentication: .kerberos)
                try await conn.sendClear(hello)
                guard case .helloAckV2(let v, let auth, let suites, let nonce) = try await conn.receive() else {
                    throw .protocolViolation("no version-2 helloAck", stage: .source)
                }
                let (sent, claimed, ackSuites) = forge(suites)
                try await conn.sendClear(.suites(sent))
                let ack = WireMessage.helloAckV2(version: v, authentication: auth, suites: ackSuites ?? suites, nonce: nonce)
                conn.negotiation = SuiteNegotiation(version: 2, suite: ProtectionSuite(rawValue: claimed.chosen) ?? .gssWrap,
                                                    binding: .none,
                                                    transcript: SuiteNegotiation.transcript(of: [hello, ack, .suites(claimed)]))
                _ = try await KerberosHandshake.clientContext(conn, target: name, credential: credential, destinationName: target.fqdn)
                return nil
            } catch {
                return error
            }
        }
    }

    @Test("downgrades are refused: a choice against the rule, no common suite, tampered suite lists (channel bindings)")
    func downgrades() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination()
        let endpoint = try requireEndpoint(destination)
        @Sendable func offer(_ chosen: UInt8, _ offered: [UInt8]) -> SuiteOffer {
            SuiteOffer(chosen: chosen, offered: offered, nonce: [UInt8](repeating: 9, count: 16),
                       migrationID: ConnectionBinding.none.migrationID, channel: 0)
        }
        // Both offer suite 2, the client "chooses" suite 1.
        let against = try await Self.forgedOpening(lab, destination) { _ in (offer(1, [2, 1]), offer(1, [2, 1]), nil) }
        #expect(against?.status == .downgradeDetected, "\(String(describing: against))")
        // A suite the server does not offer.
        destination.offerSuites([.aes256GCM])
        let none = try await Self.forgedOpening(lab, destination) { _ in (offer(1, [1]), offer(1, [1]), nil) }
        #expect(none?.status == .algorithmMismatch, "\(String(describing: none))")
        destination.offerSuites(ProtectionSuite.preferred)
        // A man in the middle strips suite 2 from the client's list: the server sees [1] and agrees
        // to suite 1, but the client's transcript has [2, 1] — the channel bindings differ.
        let stripped = try await Self.forgedOpening(lab, destination) { _ in (offer(1, [1]), offer(1, [2, 1]), nil) }
        // (The client sees MIT's failure on the acceptor's KRB-ERROR; the destination saw GSS_S_BAD_BINDINGS.)
        #expect(stripped != nil)
        #expect(await destination.events().contains(.authenticationFailed(status: .badBindings)))
        // … or strips it from the server's list in helloAck.
        let strippedAck = try await Self.forgedOpening(lab, destination) { _ in (offer(1, [2, 1]), offer(1, [2, 1]), [1]) }
        // (The client, believing the server offers only suite 1, chose it against the lists the server sees.)
        #expect(strippedAck?.status == .downgradeDetected, "\(String(describing: strippedAck))")
        // The unforged opening works (the helper is not what fails).
        let honest = try await Self.forgedOpening(lab, destination) { _ in (offer(2, [2, 1]), offer(2, [2, 1]), nil) }
        #expect(honest == nil, "\(String(describing: honest))")
        await destination.stop()
        await FaultTests.expectClean(lab, endpoint, vm: "none")
    }

    @Test("suite 2's keys are bound to the migration: an offer for another migration id is refused")
    func binding() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination()
        let credential = try await lab.userCredential()
        let target = try lab.target(destination)
        let name = try target.targetName()
        let error = try await FaultTests.raw(lab, destination) { conn throws(MigrationServiceError) -> MigrationServiceError? in
            conn.binding = ConnectionBinding(migrationID: .random(), channel: 0)
            _ = try await KerberosHandshake.client(conn, purpose: .migration, target: name, credential: credential,
                                                   destinationName: target.fqdn)
            try await conn.send(.offer(MigrationOffer(id: .random(), vm: "vm-bound", size: 65536, sha256: [UInt8](repeating: 0, count: 32),
                                                      performance: .tcpIP, channels: 1, chunkSize: 65536)))
            do throws(MigrationServiceError) { _ = try await conn.receive(); return nil } catch { return error }
        }
        #expect(error?.status == .illegalMessage, "\(String(describing: error))")
        #expect(error?.detail.contains("not for the migration") == true)
        await destination.stop()
        #expect(!lab.destinationVMs.contains("vm-bound"))
    }
}
