import Foundation
@_spi(Interop) @_spi(Testing) import KerberosCrypto
import TestRealm
import Testing

/// Interop with MIT krb5 1.20 GSSAPI in both directions: contexts are established in this process
/// against the shared throwaway KDC; one side's keys are exported (lucid context, which ends that
/// MIT context) into a `ProtectionContext`, and the other side stays a live MIT context.
///
/// The shared realm permits only aes256/aes128-cts-hmac-sha1-96, so enctypes 19 and 20 are
/// covered here only through MIT's own krb5_c_* functions (see `MITCryptoInteropTests`).
@Suite struct MITInteropTests {
    struct Endpoints {
        let ccache: String
        let keytab: String
        let target: String
    }

    static func endpoints() async throws -> Endpoints {
        let realm = try await TestRealm.shared()
        let id = UUID().uuidString.prefix(8).lowercased()
        let host = "kcrypto-\(id).test"
        try await realm.addPrincipal("kcrypto/\(host)")
        let keytab = try await realm.exportKeytab(["kcrypto/\(host)"])
        let password = "pw-\(UUID().uuidString)"
        try await realm.addPrincipal("kcuser-\(id)", password: password)
        let ccache = try await realm.kinit("kcuser-\(id)", password: password)
        return Endpoints(ccache: ccache, keytab: keytab, target: "kcrypto@\(host)")
    }

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
        #expect(throws: KerberosCryptoError.self) { try ours.unwrap(fromMIT) }
        var bad = try ours.wrap(message)
        bad[bad.count - 1] ^= 1
        do {
            _ = try peer.unwrap(bad)
            Issue.record("MIT accepted a tampered token")
        } catch let error as MITGSSError {
            #expect(error.major & 0xFFFF_0000 == 6 << 16, "GSS_S_BAD_SIG: \(error)")
        }
    }

    @Test(arguments: [Enctype.aes128CtsHmacSha1_96, .aes256CtsHmacSha1_96], [true, false])
    func exportedInitiatorWithMITAcceptor(enctype: Enctype, mutual: Bool) async throws {
        let e = try await Self.endpoints()
        let (initiator, acceptor) = try MITGSSContext.establish(initiatorCCache: e.ccache, acceptorKeytab: e.keytab,
                                                                target: e.target, mutual: mutual,
                                                                enctypes: [enctype.rawValue])
        // Deterministic tokens from MIT before export, to compare byte for byte.
        let fixed = Array("RFC 4121 byte for byte".utf8)
        let mitMIC = try initiator.getMIC(fixed)
        let mitWrap = try initiator.wrap(fixed, confidential: false)
        try acceptor.verifyMIC(fixed, token: mitMIC)
        _ = try acceptor.unwrap(mitWrap)

        let lucid = try initiator.exportLucid()
        #expect(lucid.role == .initiator)
        #expect(lucid.contextKey.enctype == enctype)
        #expect((lucid.acceptorSubkey != nil) == mutual, "MIT asserts an acceptor subkey with mutual auth")
        if let subkey = lucid.acceptorSubkey { #expect(subkey.enctype == enctype) }

        let replay = try ProtectionContext(role: .initiator, contextKey: lucid.contextKey,
                                           acceptorSubkey: lucid.acceptorSubkey,
                                           sendSequenceNumber: lucid.sendSequenceNumber &- 2,
                                           receiveSequenceNumber: lucid.receiveSequenceNumber)
        #expect(try replay.getMIC(fixed) == mitMIC, "our MIC token equals MIT's, byte for byte")
        #expect(try replay.wrap(fixed, confidential: false) == mitWrap, "our unsealed Wrap token equals MIT's")

        let ours = try ProtectionContext(lucid: lucid)
        try Self.exchange(ours: ours, peer: acceptor, seed: UInt64(enctype.rawValue) * 10 + (mutual ? 1 : 0))
    }

    @Test(arguments: [Enctype.aes128CtsHmacSha1_96, .aes256CtsHmacSha1_96], [true, false])
    func exportedAcceptorWithMITInitiator(enctype: Enctype, mutual: Bool) async throws {
        let e = try await Self.endpoints()
        let (initiator, acceptor) = try MITGSSContext.establish(initiatorCCache: e.ccache, acceptorKeytab: e.keytab,
                                                                target: e.target, mutual: mutual,
                                                                enctypes: [enctype.rawValue])
        let fixed = Array("acceptor, byte for byte".utf8)
        let mitMIC = try acceptor.getMIC(fixed)
        let mitWrap = try acceptor.wrap(fixed, confidential: false)
        try initiator.verifyMIC(fixed, token: mitMIC)
        _ = try initiator.unwrap(mitWrap)

        let lucid = try acceptor.exportLucid()
        #expect(lucid.role == .acceptor)
        #expect(lucid.contextKey.enctype == enctype)
        #expect((lucid.acceptorSubkey != nil) == mutual)

        let replay = try ProtectionContext(role: .acceptor, contextKey: lucid.contextKey,
                                           acceptorSubkey: lucid.acceptorSubkey,
                                           sendSequenceNumber: lucid.sendSequenceNumber &- 2,
                                           receiveSequenceNumber: lucid.receiveSequenceNumber)
        #expect(try replay.getMIC(fixed) == mitMIC, "our MIC token equals MIT's, byte for byte")
        #expect(try replay.wrap(fixed, confidential: false) == mitWrap, "our unsealed Wrap token equals MIT's")

        let ours = try ProtectionContext(lucid: lucid)
        try Self.exchange(ours: ours, peer: initiator, seed: UInt64(enctype.rawValue) * 100 + (mutual ? 1 : 0))
    }
}
