/// Ke, Ki and Kc of one protocol key for one key usage, with the RFC 3961 simplified-profile
/// operations on them: encrypt/decrypt (confounder, AES-CTS, truncated HMAC) and checksum.
///
/// RFC 3962 (aes-sha1): ciphertext = AES-CTS(Ke, conf | P) | HMAC-SHA1(Ki, conf | P)[0..<12].
/// RFC 8009 (aes-sha2): C = AES-CTS(Ke, conf | P); ciphertext = C | HMAC(Ki, 0^128 | C)[0..<h].
/// Immutable; safe to share across threads.
package final class DerivedKeys: Sendable {
    package let enctype: Enctype
    package let usage: KeyUsage
    let ke: AESContexts
    let ki: HMACKey
    let kc: HMACKey

    /// Derives Ke, Ki and Kc of `base` for `usage`.
    package init(base: KerberosKey, usage: KeyUsage) throws {
        enctype = base.enctype
        self.usage = usage
        ke = try AESContexts(key: KeyDerivation.derive(base, usage: usage, purpose: .encryption))
        ki = try HMACKey(key: KeyDerivation.derive(base, usage: usage, purpose: .integrity), digest: enctype.digestName)
        kc = try HMACKey(key: KeyDerivation.derive(base, usage: usage, purpose: .checksum), digest: enctype.digestName)
    }

    /// Confounder length (one AES block).
    package static let confounderLength = 16

    /// Octets `encrypt` adds to a plaintext: confounder and truncated HMAC.
    package var encryptionOverhead: Int { Self.confounderLength + enctype.macLength }

    // MARK: - Array API

    /// Encrypts `plaintext` with a fresh random confounder.
    package func encrypt(_ plaintext: [UInt8]) throws -> [UInt8] {
        try encrypt(plaintext, confounder: nil)
    }

    /// Encrypts with a given confounder: for known-answer tests only (never reuse a confounder).
    package func encrypt(_ plaintext: [UInt8], confounder: [UInt8]?) throws -> [UInt8] {
        let length = plaintext.count + encryptionOverhead
        var failure: (any Error)?
        let out = [UInt8](unsafeUninitializedCapacity: length) { buffer, initialized in
            do {
                try plaintext.withUnsafeBytes { (p) throws in
                    if let confounder {
                        try confounder.withUnsafeBytes { (c) throws in
                            try encrypt(confounder: c, pieces: [p], into: UnsafeMutableRawBufferPointer(buffer))
                        }
                    } else {
                        try encrypt(confounder: nil, pieces: [p], into: UnsafeMutableRawBufferPointer(buffer))
                    }
                }
                initialized = length
            } catch {
                failure = error
                initialized = 0
            }
        }
        if let failure { throw failure }
        return out
    }

    /// Decrypts and verifies `ciphertext`, returning the plaintext without the confounder.
    package func decrypt(_ ciphertext: [UInt8]) throws -> [UInt8] {
        guard ciphertext.count >= encryptionOverhead else { throw KerberosCryptoError.defectiveToken("ciphertext too short") }
        let length = ciphertext.count - encryptionOverhead
        var failure: (any Error)?
        let out = [UInt8](unsafeUninitializedCapacity: length) { buffer, initialized in
            do {
                var confounder = [UInt8](repeating: 0, count: Self.confounderLength)
                try ciphertext.withUnsafeBytes { (c) throws in
                    try confounder.withUnsafeMutableBytes { (conf) throws in
                        try decrypt(c, into: [conf, UnsafeMutableRawBufferPointer(buffer)])
                    }
                }
                initialized = length
            } catch {
                failure = error
                initialized = 0
            }
        }
        if let failure { throw failure }
        return out
    }

    /// The checksum (truncated HMAC with Kc) of `message`.
    package func checksum(_ message: [UInt8]) throws -> [UInt8] {
        try message.withUnsafeBytes { (m) throws in
            try kc.compute([m], truncatedTo: enctype.macLength)
        }
    }

    // MARK: - Buffer API (no copies)

    /// Encrypts the concatenation of `pieces` into `out` (exactly total + `encryptionOverhead`
    /// octets): ciphertext of confounder | pieces, then the truncated HMAC.
    func encrypt(confounder: UnsafeRawBufferPointer?, pieces: [UnsafeRawBufferPointer],
                 into out: UnsafeMutableRawBufferPointer) throws {
        let plainLength = pieces.reduce(Self.confounderLength) { $0 + $1.count }
        guard out.count == plainLength + enctype.macLength, let outBase = out.baseAddress else {
            throw KerberosCryptoError.bufferTooSmall(needed: plainLength + enctype.macLength)
        }
        try encrypt(confounder: confounder, pieces: pieces,
                    into: [UnsafeMutableRawBufferPointer(start: outBase, count: plainLength)], mac: outBase + plainLength)
    }

    /// Encrypts confounder | `pieces` into the concatenation of `outputs` (16 + the pieces' total
    /// octets; an output may be the input piece at the same offset, for in-place encryption) and
    /// writes the truncated HMAC (`macLength` octets) to `mac`.
    func encrypt(confounder: UnsafeRawBufferPointer?, pieces: [UnsafeRawBufferPointer],
                 into outputs: [UnsafeMutableRawBufferPointer], mac macOut: UnsafeMutableRawPointer) throws {
        let plainLength = pieces.reduce(Self.confounderLength) { $0 + $1.count }
        guard outputs.reduce(0, { $0 + $1.count }) == plainLength else {
            throw KerberosCryptoError.bufferTooSmall(needed: plainLength)
        }
        try withUnsafeTemporaryAllocation(byteCount: Self.confounderLength + 64, alignment: 16) { scratch in
            let c = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<Self.confounderLength])
            if let confounder {
                guard confounder.count == Self.confounderLength else { throw KerberosCryptoError.libcrypto("confounder must be 16 octets") }
                c.copyMemory(from: confounder)
            } else {
                try LibCrypto.randomBytes(c)
            }
            let all = [UnsafeRawBufferPointer(c)] + pieces
            // The HMAC runs alongside the cipher, one cache-sized run at a time: over the
            // plaintext (RFC 3962) or over zero IV | ciphertext (RFC 8009).
            let mac = try ki.start()
            let macsCiphertext = enctype.isRFC8009
            if macsCiphertext { try mac.update(UnsafeRawBufferPointer(start: Self.zeroBlock, count: 16)) }
            // Plaintext is hashed before each run is encrypted (encryption may be in place).
            try AESCTS.encrypt(key: ke, pieces: all, into: outputs,
                               beforeRun: macsCiphertext ? nil : { try mac.update($0) },
                               afterRun: macsCiphertext ? { try mac.update($0) } : nil)
            let m = UnsafeMutableRawBufferPointer(rebasing: scratch[Self.confounderLength...])
            try mac.finish(into: m)
            macOut.copyMemory(from: m.baseAddress!, byteCount: enctype.macLength)
            scratch.initializeMemory(as: UInt8.self, repeating: 0)
        }
    }

    /// Sixteen zero octets: RFC 8009's initial cipher state, hashed before the ciphertext.
    nonisolated(unsafe) private static let zeroBlock: UnsafeRawPointer = {  // never written after init
        let p = UnsafeMutableRawPointer.allocate(byteCount: 16, alignment: 16)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: 16)
        return UnsafeRawPointer(p)
    }()

    /// Verifies and decrypts `ciphertext` (ciphertext | truncated HMAC) into `pieces`, whose total
    /// length is `ciphertext.count - macLength` (the first 16 octets are the confounder).
    /// Throws `badSignature` (with the pieces zeroed) unless the HMAC matches.
    func decrypt(_ ciphertext: UnsafeRawBufferPointer, into pieces: [UnsafeMutableRawBufferPointer]) throws {
        let macLength = enctype.macLength
        guard ciphertext.count >= encryptionOverhead, let base = ciphertext.baseAddress else {
            throw KerberosCryptoError.defectiveToken("ciphertext shorter than confounder and checksum")
        }
        let cipherLength = ciphertext.count - macLength
        guard pieces.reduce(0, { $0 + $1.count }) == cipherLength else {
            throw KerberosCryptoError.bufferTooSmall(needed: cipherLength)
        }
        let received = UnsafeRawBufferPointer(rebasing: ciphertext[cipherLength...])
        // Decrypt and HMAC in one pass (cache-sized runs). RFC 8009 MACs the ciphertext, RFC 3962
        // the plaintext; either way nothing is returned unless the MAC matches, and on a mismatch
        // the plaintext already written is wiped.
        let mac = try ki.start()
        let macsCiphertext = enctype.isRFC8009
        if macsCiphertext { try mac.update(UnsafeRawBufferPointer(start: Self.zeroBlock, count: 16)) }
        // Ciphertext is hashed before each run is decrypted (decryption may be in place).
        try AESCTS.decrypt(key: ke, input: base, length: cipherLength, into: pieces,
                           beforeRun: macsCiphertext ? { try mac.update($0) } : nil,
                           afterRun: macsCiphertext ? nil : { try mac.update($0) })
        let matches = try withUnsafeTemporaryAllocation(byteCount: 64, alignment: 16) { m in
            try mac.finish(into: m)
            return LibCrypto.constantTimeEqual(UnsafeRawBufferPointer(rebasing: m[0..<macLength]), received)
        }
        guard matches else {
            for piece in pieces { piece.initializeMemory(as: UInt8.self, repeating: 0) }
            throw KerberosCryptoError.badSignature(macsCiphertext ? "HMAC of the ciphertext does not match"
                                                                  : "HMAC of the plaintext does not match")
        }
    }

    /// Writes the truncated Kc HMAC of the concatenation of `pieces` to `out` (`macLength` octets).
    func checksum(_ pieces: [UnsafeRawBufferPointer], into out: UnsafeMutableRawPointer) throws {
        var mac = [UInt8](repeating: 0, count: 64)
        try mac.withUnsafeMutableBytes { (m) throws in
            try kc.compute(pieces, into: m)
            out.copyMemory(from: m.baseAddress!, byteCount: enctype.macLength)
        }
    }
}
