import CLibCrypto
import Synchronization

/// Key derivation: RFC 3961 DK with n-fold (RFC 3962 enctypes), RFC 8009 KDF-HMAC-SHA2, and
/// string-to-key (PBKDF2) for both families.
package enum KeyDerivation {
    /// What a derived key is for (the last octet of the usage constant).
    package enum Purpose: UInt8, Sendable {
        /// Kc, checksums (0x99).
        case checksum = 0x99
        /// Ke, encryption (0xAA).
        case encryption = 0xAA
        /// Ki, integrity of encryptions (0x55).
        case integrity = 0x55
    }

    /// The derived key for `usage` and `purpose` from the protocol key `base`.
    package static func derive(_ base: KerberosKey, usage: KeyUsage, purpose: Purpose) throws -> KerberosKey {
        let u = usage.rawValue
        let constant: [UInt8] = [UInt8(u >> 24), UInt8(u >> 16 & 0xFF), UInt8(u >> 8 & 0xFF), UInt8(u & 0xFF), purpose.rawValue]
        let enctype = base.enctype
        if enctype.isRFC8009 {
            let bits = purpose == .encryption ? enctype.keyLength * 8 : enctype.macLength * 8
            return try kdfHMACSHA2(base, label: constant, bits: bits)
        }
        return try dk(base, constant: constant)
    }

    /// n-fold(constant, 128) of DK's public constants (usage number and purpose, or "kerberos"), computed once
    /// each: every new context derives six keys, and the bit-by-bit n-fold was ~2.5 % of a CredSSP exchange's CPU.
    private static let foldedConstants = Mutex<[[UInt8]: [UInt8]]>([:])

    static func foldedConstant(_ constant: [UInt8]) -> [UInt8] {
        if let known = foldedConstants.withLock({ $0[constant] }) { return known }
        let folded = nFold(constant, outputLength: 16)
        foldedConstants.withLock { cache in
            if cache.count >= 1024 { cache.removeAll() }   // usage numbers are few; bound it anyway
            cache[constant] = folded
        }
        return folded
    }

    /// RFC 3961 §5.1 DK(key, constant) = random-to-key(DR(key, constant)) for AES (random-to-key is
    /// the identity): AES-encrypt n-fold(constant, 128) and keep encrypting until enough octets.
    package static func dk(_ key: KerberosKey, constant: [UInt8]) throws -> KerberosKey {
        let length = key.enctype.keyLength
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: length + 16, alignment: 16)
        do {
            var block = foldedConstant(constant)
            var produced = 0
            while produced < length {
                var next = [UInt8](repeating: 0, count: 16)
                try block.withUnsafeBytes { (b) throws in
                    try next.withUnsafeMutableBytes { (n) throws in
                        // One block of CBC with a zero IV is one block of AES (ECB).
                        try AESCTS.encrypt(key: key, pieces: [b], into: n.baseAddress!, length: 16)
                    }
                }
                let take = min(16, length - produced)
                (out.baseAddress! + produced).copyMemory(from: next, byteCount: take)
                produced += take
                block = next
            }
            block.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) }
            return KerberosKey(enctype: key.enctype, adopting: out, length: length)
        } catch {
            OPENSSL_cleanse(out.baseAddress, out.count)
            out.deallocate()
            throw error
        }
    }

    /// RFC 8009 §3 KDF-HMAC-SHA2(key, label, k) = k-truncate(HMAC(key, 0x00000001 | label | 0x00 | k)).
    package static func kdfHMACSHA2(_ key: KerberosKey, label: [UInt8], bits: Int) throws -> KerberosKey {
        let hmac = try HMACKey(key: key, digest: key.enctype.digestName)
        let message: [UInt8] = [0, 0, 0, 1] + label + [0] +
            [UInt8(bits >> 24 & 0xFF), UInt8(bits >> 16 & 0xFF), UInt8(bits >> 8 & 0xFF), UInt8(bits & 0xFF)]
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 16)
        do {
            try message.withUnsafeBytes { (m) throws in try hmac.compute([m], into: out) }
        } catch {
            OPENSSL_cleanse(out.baseAddress, out.count)
            out.deallocate()
            throw error
        }
        OPENSSL_cleanse(out.baseAddress! + bits / 8, 64 - bits / 8)
        return KerberosKey(enctype: key.enctype, adopting: out, length: bits / 8)
    }

    /// The output of PBKDF2 before the final derivation (RFC 3962's "PBKDF2 output", RFC 8009's tkey).
    package static func pbkdf2(password: String, salt: [UInt8], iterations: Int? = nil,
                              enctype: Enctype) throws -> KerberosKey {
        let saltp = enctype.isRFC8009 ? Array(enctype.name.utf8) + [0] + salt : salt
        let digest = enctype.isRFC8009 ? enctype.digestName : "SHA1"
        let out = try LibCrypto.pbkdf2(password: Array(password.utf8), salt: saltp,
                                       iterations: iterations ?? enctype.defaultIterations,
                                       digest: digest, length: enctype.keyLength)
        return KerberosKey(enctype: enctype, adopting: out, length: enctype.keyLength)
    }

    /// string-to-key: RFC 3962 §4 (DK(PBKDF2-HMAC-SHA1, "kerberos")) or RFC 8009 §4
    /// (KDF-HMAC-SHA2(PBKDF2-HMAC-SHA2(enctype-name | 0 | salt), "kerberos")).
    package static func stringToKey(password: String, salt: [UInt8], iterations: Int? = nil,
                                   enctype: Enctype) throws -> KerberosKey {
        let tkey = try pbkdf2(password: password, salt: salt, iterations: iterations, enctype: enctype)
        let kerberos = Array("kerberos".utf8)
        if enctype.isRFC8009 {
            return try kdfHMACSHA2(tkey, label: kerberos, bits: enctype.keyLength * 8)
        }
        return try dk(tkey, constant: kerberos)
    }
}
