import Foundation
import GSS
import KerberosCrypto
import KerberosCryptoTestSupport
import TestRealm
import Testing
import TestSupport

/// A pair of live MIT krb5 GSS contexts of one enctype, established in this process against the
/// shared throwaway KDC (which permits all four enctypes), with a fresh service and user each.
/// `split(exporting:)` exports one side's keys (lucid context; MIT deletes that side) into a
/// ``ProtectionContext`` and keeps the other side live.
struct MITContextFixture {
    let initiator: MITGSSContext
    let acceptor: MITGSSContext

    init(enctype: Enctype, mutual: Bool) async throws {
        let realm = try await TestRealm.shared()
        let id = UUID().uuidString.prefix(8).lowercased()
        let host = "kcrypto-\(id).test"
        try await realm.addPrincipal("kcrypto/\(host)")
        let keytab = try await realm.exportKeytab(["kcrypto/\(host)"])
        let password = "pw-\(UUID().uuidString)"
        try await realm.addPrincipal("kcuser-\(id)", password: password)
        let ccache = try await realm.kinit("kcuser-\(id)", password: password)
        (initiator, acceptor) = try MITGSSContext.establish(initiatorCCache: ccache, acceptorKeytab: keytab,
                                                            target: "kcrypto@\(host)", mutual: mutual,
                                                            enctypes: [enctype.rawValue])
    }

    /// The exported side's lucid keys and MIT's live peer.
    func split(exporting role: ProtectionContext.Role) throws -> (lucid: LucidContext, peer: MITGSSContext) {
        role == .initiator ? (try initiator.exportLucid(), acceptor) : (try acceptor.exportLucid(), initiator)
    }

    func side(_ role: ProtectionContext.Role) -> MITGSSContext { role == .initiator ? initiator : acceptor }
}

/// Interop with MIT krb5 1.20 GSSAPI for enctypes 17–20, exporting either side: our tokens are
/// accepted by MIT's live peer and MIT's by us; our MIC and unsealed Wrap tokens equal MIT's byte
/// for byte at the same sequence number; MIT reports our replays and tampering as it should.
@Suite struct MITInteropTests {
    static let sizes = [0, 1, 15, 16, 17, 33, 1000, 65_536, 100_003]

    /// Exchanges messages between our context `ours` and MIT's live `peer` in both directions.
    static func exchange(ours: ProtectionContext, peer: MITGSSContext, seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        for (i, size) in sizes.enumerated() {
            let message = rng.bytes(size)
            let confidential = i % 3 != 1
            let token = try ours.wrap(message, confidential: confidential)
            let atMIT = try peer.unwrap(token)
            #expect(atMIT.message == message, "MIT unwraps our token (size \(size), conf \(confidential))")
            #expect(atMIT.confidential == confidential)
            #expect(atMIT.major == 0, "in sequence at MIT")

            let fromMIT = try peer.wrap(message, confidential: confidential)
            let here = try ours.unwrap(fromMIT)
            #expect(here.data == message, "we unwrap MIT's token (size \(size), conf \(confidential))")
            #expect(here.info.confidential == confidential)
            #expect(here.info.sequence == .inSequence)

            #expect(try peer.verifyMIC(message, token: ours.getMIC(message)) == 0, "MIT verifies our MIC")
            #expect(try ours.verifyMIC(message, token: peer.getMIC(message)).sequence == .inSequence)
        }
        // Replays are caught on both sides; tampering is a bad signature at MIT.
        let message = rng.bytes(100)
        let token = try ours.wrap(message)
        _ = try peer.unwrap(token)
        #expect(try peer.unwrap(token).major & 0x2 != 0, "MIT: GSS_S_DUPLICATE_TOKEN")
        let fromMIT = try peer.wrap(message)
        _ = try ours.unwrap(fromMIT)
        #expect(throws: KerberosCryptoError.duplicateToken(sequenceNumber: try WrapToken(parsing: fromMIT).sequenceNumber)) {
            try ours.unwrap(fromMIT)
        }
        var bad = try ours.wrap(message)
        bad[bad.count - 1] ^= 1
        do {
            _ = try peer.unwrap(bad)
            Issue.record("MIT accepted a tampered token")
        } catch let error as MITGSSError {
            #expect(error.major & 0xFFFF_0000 == 6 << 16, "GSS_S_BAD_SIG: \(error)")
        }
    }

    @Test(arguments: Enctype.allCases, [ProtectionContext.Role.initiator, .acceptor])
    func exportedSideTalksToMITPeer(enctype: Enctype, exported role: ProtectionContext.Role) async throws {
        for mutual in [true, false] {
            let fixture = try await MITContextFixture(enctype: enctype, mutual: mutual)
            // Deterministic tokens from MIT before export, to compare byte for byte.
            let fixed = Array("RFC 4121 byte for byte, \(role)".utf8)
            let mitMIC = try fixture.side(role).getMIC(fixed)
            let mitWrap = try fixture.side(role).wrap(fixed, confidential: false)
            let (lucid, peer) = try fixture.split(exporting: role)
            try peer.verifyMIC(fixed, token: mitMIC)
            _ = try peer.unwrap(mitWrap)

            #expect(lucid.role == role)
            #expect(lucid.contextKey.enctype == enctype)
            #expect(lucid.enctype == enctype)
            #expect((lucid.acceptorSubkey != nil) == mutual, "MIT asserts an acceptor subkey with mutual auth")
            if let subkey = lucid.acceptorSubkey { #expect(subkey.enctype == enctype) }

            let replay = try ProtectionContext(role: role, contextKey: lucid.contextKey,
                                               acceptorSubkey: lucid.acceptorSubkey,
                                               sendSequenceNumber: lucid.sendSequenceNumber &- 2,
                                               receiveSequenceNumber: lucid.receiveSequenceNumber)
            #expect(try replay.getMIC(fixed) == mitMIC, "our MIC token equals MIT's, byte for byte")
            #expect(try replay.wrap(fixed, confidential: false) == mitWrap, "our unsealed Wrap token equals MIT's")

            let ours = try ProtectionContext(lucid: lucid)
            try Self.exchange(ours: ours, peer: peer,
                              seed: UInt64(enctype.rawValue) * 100 + (role == .initiator ? 10 : 0) + (mutual ? 1 : 0))
        }
    }

    /// `LucidContext.inquire` reads the keys without deleting MIT's context: MIT's own context keeps
    /// working afterwards, and the keys equal what the (destructive) export returns.
    @Test(arguments: [Enctype.aes256CtsHmacSha1_96, .aes256CtsHmacSha384_192])
    func inquiryLeavesTheContextAlive(enctype: Enctype) async throws {
        let fixture = try await MITContextFixture(enctype: enctype, mutual: true)
        let handle = try #require(fixture.initiator.handle)
        let inquired = try LucidContext.inquire(handle)
        let message = Array("still alive".utf8)
        #expect(try fixture.acceptor.unwrap(fixture.initiator.wrap(message)).message == message)
        let exported = try fixture.initiator.exportLucid()
        #expect(inquired.enctype == enctype)
        #expect(inquired.contextKey.bytesForTesting == exported.contextKey.bytesForTesting)
        #expect(inquired.acceptorSubkey?.bytesForTesting == exported.acceptorSubkey?.bytesForTesting)
        #expect(inquired.sendSequenceNumber &+ 1 == exported.sendSequenceNumber, "MIT's wrap used one number")
    }
}
