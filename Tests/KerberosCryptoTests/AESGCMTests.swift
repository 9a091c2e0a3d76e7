import Crypto
import Foundation
import KerberosCrypto
import TestSupport
import Testing

/// AES-256-GCM in place through OpenSSL: the AES-256 test cases of the GCM specification
/// (McGrew–Viega, as NIST's GCM validation uses them), a cross-check against swift-crypto's
/// `AES.GCM` on random sizes, and refusals of anything altered.
@Suite("AES-256-GCM (KerberosCrypto)")
struct AESGCMTests {
    struct Vector: Sendable, CustomStringConvertible {
        let name: String, key: String, nonce: String, plaintext: String, aad: String, ciphertext: String, tag: String
        var description: String { name }
    }

    static let k15 = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"
    static let p15 = """
        d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525\
        b16aedf5aa0de657ba637b391aafd255
        """
    static let c15 = """
        522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838\
        c5f61e6393ba7a0abcc9f662898015ad
        """
    static let vectors: [Vector] = [
        Vector(name: "test case 13 (empty)", key: String(repeating: "00", count: 32), nonce: String(repeating: "00", count: 12),
               plaintext: "", aad: "", ciphertext: "", tag: "530f8afbc74536b9a963b4f1c4cb738b"),
        Vector(name: "test case 14", key: String(repeating: "00", count: 32), nonce: String(repeating: "00", count: 12),
               plaintext: String(repeating: "00", count: 16), aad: "", ciphertext: "cea7403d4d606b6e074ec5d3baf39d18",
               tag: "d0d1c8a799996bf0265b98b5d48ab919"),
        Vector(name: "test case 15", key: k15, nonce: "cafebabefacedbaddecaf888", plaintext: p15, aad: "",
               ciphertext: c15, tag: "b094dac5d93471bdec1a502270e3cc6c"),
        Vector(name: "test case 16 (AAD, partial block)", key: k15, nonce: "cafebabefacedbaddecaf888",
               plaintext: String(p15.dropLast(8)), aad: "feedfacedeadbeeffeedfacedeadbeefabaddad2",
               ciphertext: String(c15.dropLast(8)), tag: "76fc6ece0f4e1768cddf8853bb2d551b"),
    ]

    @Test("known answers: seal gives the vector's ciphertext and tag, open gives the plaintext back", arguments: vectors)
    func knownAnswer(_ v: Vector) throws {
        var data = hex(v.plaintext)
        var tag = [UInt8](repeating: 0, count: 16)
        let sealer = try AES256GCM(key: hex(v.key), direction: .seal)
        try seal(sealer, &data, nonce: hex(v.nonce), aad: hex(v.aad), tag: &tag)
        #expect(hexString(data) == v.ciphertext)
        #expect(hexString(tag) == v.tag)
        let opener = try AES256GCM(key: hex(v.key), direction: .open)
        try open(opener, &data, nonce: hex(v.nonce), aad: hex(v.aad), tag: tag)
        #expect(hexString(data) == v.plaintext)
    }

    @Test("cross-check with swift-crypto AES.GCM, sizes 0 … 1 MiB + 17, one key for many nonces")
    func crossCheck() throws {
        var g = SeededGenerator(seed: 0x6A5)
        let key = g.bytes(32)
        let sealer = try AES256GCM(key: key, direction: .seal)
        let opener = try AES256GCM(key: key, direction: .open)
        for size in [0, 1, 15, 16, 17, 4096, 65_537, 1 << 20, (1 << 20) + 17] {
            let plain = g.bytes(size)
            let nonce = g.bytes(12)
            let aad = g.bytes(size % 29)
            var data = plain
            var tag = [UInt8](repeating: 0, count: 16)
            try seal(sealer, &data, nonce: nonce, aad: aad, tag: &tag)
            let theirs = try AES.GCM.seal(plain, using: SymmetricKey(data: key), nonce: AES.GCM.Nonce(data: nonce),
                                          authenticating: aad)
            #expect(data == Array(theirs.ciphertext), "size \(size)")
            #expect(tag == Array(theirs.tag), "size \(size)")
            // And the other way: swift-crypto's box opens here.
            var back = Array(theirs.ciphertext)
            try open(opener, &back, nonce: nonce, aad: aad, tag: Array(theirs.tag))
            #expect(back == plain, "size \(size)")
        }
    }

    @Test("altered ciphertext, tag, nonce or AAD: badSignature (SEC_E_MESSAGE_ALTERED)")
    func tampering() throws {
        var g = SeededGenerator(seed: 7)
        let key = g.bytes(32)
        let sealer = try AES256GCM(key: key, direction: .seal)
        let opener = try AES256GCM(key: key, direction: .open)
        let plain = g.bytes(1000), nonce = g.bytes(12), aad = g.bytes(13)
        var sealed = plain
        var tag = [UInt8](repeating: 0, count: 16)
        try seal(sealer, &sealed, nonce: nonce, aad: aad, tag: &tag)
        func refused(_ data: [UInt8], _ nonce: [UInt8], _ aad: [UInt8], _ tag: [UInt8]) -> KerberosCryptoError? {
            var d = data
            do { try open(opener, &d, nonce: nonce, aad: aad, tag: tag); return nil } catch { return error as? KerberosCryptoError }
        }
        var flipped = sealed; flipped[500] ^= 0x40
        var badTag = tag; badTag[15] ^= 1
        var badNonce = nonce; badNonce[11] ^= 1
        var badAAD = aad; badAAD[0] ^= 0x80
        for e in [refused(flipped, nonce, aad, tag), refused(sealed, nonce, aad, badTag),
                  refused(sealed, badNonce, aad, tag), refused(sealed, nonce, badAAD, tag)] {
            #expect(e == .badSignature("AES-256-GCM tag mismatch"))
            #expect(e?.windowsStatus == .messageAltered)
        }
        // The context is still good after a refusal.
        var ok = sealed
        try open(opener, &ok, nonce: nonce, aad: aad, tag: tag)
        #expect(ok == plain)
        // Bad parameters are typed errors.
        #expect(throws: KerberosCryptoError.self) { try AES256GCM(key: [UInt8](repeating: 0, count: 16), direction: .seal) }
        #expect(throws: KerberosCryptoError.self) { try seal(opener, &ok, nonce: nonce, aad: aad, tag: &tag) }
        #expect(throws: KerberosCryptoError.self) { try open(opener, &ok, nonce: [1, 2, 3], aad: aad, tag: tag) }
    }

    func seal(_ c: AES256GCM, _ data: inout [UInt8], nonce: [UInt8], aad: [UInt8], tag: inout [UInt8]) throws {
        try data.withUnsafeMutableBytes { d in
            try nonce.withUnsafeBytes { n in
                try aad.withUnsafeBytes { a in try tag.withUnsafeMutableBytes { t in try c.seal(d, nonce: n, aad: a, tag: t) } }
            }
        }
    }

    func open(_ c: AES256GCM, _ data: inout [UInt8], nonce: [UInt8], aad: [UInt8], tag: [UInt8]) throws {
        try data.withUnsafeMutableBytes { d in
            try nonce.withUnsafeBytes { n in
                try aad.withUnsafeBytes { a in try tag.withUnsafeBytes { t in try c.open(d, nonce: n, aad: a, tag: t) } }
            }
        }
    }
}
