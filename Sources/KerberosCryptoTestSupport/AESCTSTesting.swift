import KerberosCrypto

/// Raw AES-CTS with a zero IV, for RFC 3962 Appendix B known-answer tests.
package enum AESCTSTesting {
    package static func encrypt(key: [UInt8], _ plaintext: [UInt8]) throws -> [UInt8] {
        let k = KerberosKey(enctype: key.count == 16 ? .aes128CtsHmacSha1_96 : .aes256CtsHmacSha1_96, unchecked: key)
        var out = [UInt8](repeating: 0, count: plaintext.count)
        try plaintext.withUnsafeBytes { (p) throws in
            try out.withUnsafeMutableBytes { (o) throws in
                try AESCTS.encrypt(key: k, pieces: [p], into: o.baseAddress!, length: p.count)
            }
        }
        return out
    }

    /// Decrypts into `split` pieces of the given lengths (to exercise scattering), concatenated.
    package static func decrypt(key: [UInt8], _ ciphertext: [UInt8], split: [Int] = []) throws -> [UInt8] {
        let k = KerberosKey(enctype: key.count == 16 ? .aes128CtsHmacSha1_96 : .aes256CtsHmacSha1_96, unchecked: key)
        var out = [UInt8](repeating: 0, count: ciphertext.count)
        try ciphertext.withUnsafeBytes { (c) throws in
            try out.withUnsafeMutableBytes { (o) throws in
                var pieces: [UnsafeMutableRawBufferPointer] = []
                var start = 0
                for length in split where start + length <= o.count {
                    pieces.append(UnsafeMutableRawBufferPointer(rebasing: o[start..<(start + length)]))
                    start += length
                }
                pieces.append(UnsafeMutableRawBufferPointer(rebasing: o[start...]))
                try AESCTS.decrypt(key: AESContexts(key: k), input: c.baseAddress!, length: c.count, into: pieces)
            }
        }
        return out
    }
}
