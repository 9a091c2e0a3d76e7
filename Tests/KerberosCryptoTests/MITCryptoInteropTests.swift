import CGSSAPI
import KerberosCrypto
import TestRealm
import Testing
import TestSupport

/// Our RFC 3961 encryption and checksums against MIT's libk5crypto (krb5_c_encrypt/decrypt,
/// krb5_c_make_checksum) for all four enctypes and the four RFC 4121 key usages, both ways.
/// (GSS-level interop for all four enctypes is in `MITInteropTests` and GSSTests' `FastProtectionTests`.)
@Suite struct MITCryptoInteropTests {
    static func checksumType(_ enctype: Enctype) -> Int32 {
        switch enctype {
        case .aes128CtsHmacSha1_96: 0x0F
        case .aes256CtsHmacSha1_96: 0x10
        case .aes128CtsHmacSha256_128: 0x13
        case .aes256CtsHmacSha384_192: 0x14
        }
    }

    @Test(arguments: Enctype.allCases)
    func encryptionAndChecksumsMatchMIT(enctype: Enctype) async throws {
        _ = try await TestRealm.shared()  // KRB5_CONFIG points at the throwaway realm, never /etc/krb5.conf
        var context: krb5_context?
        #expect(krb5_init_context(&context) == 0)
        defer { krb5_free_context(context) }
        var rng = SeededGenerator(seed: 0xC0FFEE + UInt64(enctype.rawValue))
        var keyBytes = rng.bytes(enctype.keyLength)
        let base = try KerberosKey(enctype: enctype, bytes: keyBytes)
        for usage in [KeyUsage.acceptorSeal, .acceptorSign, .initiatorSeal, .initiatorSign] {
            let ours = try DerivedKeys(base: base, usage: usage)
            for size in [0, 1, 16, 17, 100, 5000] {
                var plain = rng.bytes(size)
                try keyBytes.withUnsafeMutableBytes { k in
                    var key = krb5_keyblock(magic: 0, enctype: enctype.rawValue, length: UInt32(k.count),
                                            contents: k.baseAddress!.assumingMemoryBound(to: UInt8.self))
                    try plain.withUnsafeMutableBytes { p in
                        var input = krb5_data(magic: 0, length: UInt32(p.count),
                                              data: p.baseAddress?.assumingMemoryBound(to: CChar.self))
                        // MIT encrypts, we decrypt.
                        var length = 0
                        #expect(krb5_c_encrypt_length(context, enctype.rawValue, p.count, &length) == 0)
                        var cipher = [UInt8](repeating: 0, count: length)
                        cipher.withUnsafeMutableBytes { c in
                            var output = krb5_enc_data()
                            output.enctype = enctype.rawValue
                            output.ciphertext = krb5_data(magic: 0, length: UInt32(c.count),
                                                          data: c.baseAddress!.assumingMemoryBound(to: CChar.self))
                            #expect(krb5_c_encrypt(context, &key, Int32(usage.rawValue), nil, &input, &output) == 0)
                        }
                        #expect(cipher.count == size + ours.encryptionOverhead)
                        #expect(try ours.decrypt(cipher) == Array(p), "MIT → ours, \(usage), \(size) octets")

                        // We encrypt, MIT decrypts.
                        var ourCipher = try ours.encrypt(Array(p))
                        var back = [UInt8](repeating: 0, count: max(size, 1))
                        let status = ourCipher.withUnsafeMutableBytes { c in
                            back.withUnsafeMutableBytes { b in
                                var encrypted = krb5_enc_data()
                                encrypted.enctype = enctype.rawValue
                                encrypted.ciphertext = krb5_data(magic: 0, length: UInt32(c.count),
                                                                 data: c.baseAddress!.assumingMemoryBound(to: CChar.self))
                                var output = krb5_data(magic: 0, length: UInt32(b.count),
                                                       data: b.baseAddress!.assumingMemoryBound(to: CChar.self))
                                let s = krb5_c_decrypt(context, &key, Int32(usage.rawValue), nil, &encrypted, &output)
                                return (s, Int(output.length))
                            }
                        }
                        #expect(status.0 == 0, "MIT decrypts ours, \(usage), \(size) octets")
                        #expect(Array(back.prefix(status.1)) == Array(p))

                        // Same checksum as MIT.
                        var checksum = krb5_checksum()
                        #expect(krb5_c_make_checksum(context, Self.checksumType(enctype), &key, Int32(usage.rawValue),
                                                     &input, &checksum) == 0)
                        let mitChecksum = Array(UnsafeBufferPointer(start: checksum.contents, count: Int(checksum.length)))
                        krb5_free_checksum_contents(context, &checksum)
                        #expect(try ours.checksum(Array(p)) == mitChecksum, "checksum \(usage), \(size) octets")
                    }
                }
            }
        }
    }
}
