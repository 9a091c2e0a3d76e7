import CLibCrypto

/// AES-256-GCM (NIST SP 800-38D) through OpenSSL's EVP, in place: the data is encrypted or
/// decrypted where it lies, with a 96-bit nonce, associated data and a 16-byte tag. The key
/// schedule is set up once; each message only sets its nonce.
///
/// One value serves one direction: `.seal` encrypts, `.open` decrypts. Not thread-safe (one
/// `EVP_CIPHER_CTX`): one owner, one task at a time. The key is copied into OpenSSL's context
/// only; `EVP_CIPHER_CTX_free` cleanses it.
package final class AES256GCM {
    package enum Direction: Sendable { case seal, open }

    package static let keyLength = 32
    package static let nonceLength = 12
    package static let tagLength = 16

    nonisolated(unsafe) private static let cipher = EVP_CIPHER_fetch(nil, "AES-256-GCM", nil)

    private let ctx: OpaquePointer
    package let direction: Direction

    /// A context for `key` (32 bytes); `.seal` to encrypt, `.open` to decrypt.
    package init(key: UnsafeRawBufferPointer, direction: Direction) throws(KerberosCryptoError) {
        ctx = try Self.makeContext(key: key, direction: direction)
        self.direction = direction
    }

    /// `init(key:direction:)` over an array.
    package init(key: [UInt8], direction: Direction) throws(KerberosCryptoError) {
        ctx = try key.withUnsafeBytes { k in
            Result { () throws(KerberosCryptoError) in try Self.makeContext(key: k, direction: direction) }
        }.get()
        self.direction = direction
    }

    private static func makeContext(key: UnsafeRawBufferPointer, direction: Direction) throws(KerberosCryptoError) -> OpaquePointer {
        guard key.count == keyLength, let keyBase = key.baseAddress else {
            throw .invalidKey("AES-256-GCM needs a 32-byte key, got \(key.count)")
        }
        guard let cipher, let ctx = EVP_CIPHER_CTX_new() else {
            throw .libcrypto("AES-256-GCM not available from the default provider")
        }
        let enc: Int32 = direction == .seal ? 1 : 0
        guard EVP_CipherInit_ex2(ctx, cipher, keyBase.assumingMemoryBound(to: UInt8.self), nil, enc, nil) == 1 else {
            EVP_CIPHER_CTX_free(ctx)
            throw error("EVP_CipherInit_ex2(AES-256-GCM)")
        }
        return ctx
    }

    deinit { EVP_CIPHER_CTX_free(ctx) }

    /// Encrypts `data` in place and writes the 16-byte tag into `tag`.
    package func seal(_ data: UnsafeMutableRawBufferPointer, nonce: UnsafeRawBufferPointer,
                     aad: UnsafeRawBufferPointer, tag: UnsafeMutableRawBufferPointer) throws(KerberosCryptoError) {
        guard direction == .seal else { throw .libcrypto("this AES-256-GCM context opens, it does not seal") }
        guard tag.count == Self.tagLength, let tagBase = tag.baseAddress else { throw .bufferTooSmall(needed: Self.tagLength) }
        try start(nonce: nonce, aad: aad)
        try update(data)
        var n: Int32 = 0
        guard EVP_EncryptFinal_ex(ctx, nil, &n) == 1 else { throw Self.error("EVP_EncryptFinal_ex") }
        guard EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, Int32(Self.tagLength), tagBase) == 1 else {
            throw Self.error("EVP_CTRL_AEAD_GET_TAG")
        }
    }

    /// Checks `tag` and decrypts `data` in place. A wrong key, nonce, associated data, tag or any
    /// altered byte throws ``KerberosCryptoError/badSignature(_:)``; `data` then holds garbage.
    package func open(_ data: UnsafeMutableRawBufferPointer, nonce: UnsafeRawBufferPointer,
                     aad: UnsafeRawBufferPointer, tag: UnsafeRawBufferPointer) throws(KerberosCryptoError) {
        guard direction == .open else { throw .libcrypto("this AES-256-GCM context seals, it does not open") }
        guard tag.count == Self.tagLength, let tagBase = tag.baseAddress else {
            throw .defectiveToken("AES-256-GCM tag of \(tag.count) bytes, 16 needed")
        }
        try start(nonce: nonce, aad: aad)
        try update(data)
        guard EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, Int32(Self.tagLength),
                                  UnsafeMutableRawPointer(mutating: tagBase)) == 1 else {
            throw Self.error("EVP_CTRL_AEAD_SET_TAG")
        }
        var n: Int32 = 0
        guard EVP_DecryptFinal_ex(ctx, nil, &n) == 1 else {
            ERR_clear_error()
            throw .badSignature("AES-256-GCM tag mismatch")
        }
    }

    private func start(nonce: UnsafeRawBufferPointer, aad: UnsafeRawBufferPointer) throws(KerberosCryptoError) {
        guard nonce.count == Self.nonceLength, let nonceBase = nonce.baseAddress else {
            throw .invalidKey("AES-256-GCM nonce of \(nonce.count) bytes, 12 needed")
        }
        // Re-initialising with only a nonce keeps the key schedule (12 bytes is GCM's default IV length).
        guard EVP_CipherInit_ex2(ctx, nil, nil, nonceBase.assumingMemoryBound(to: UInt8.self), -1, nil) == 1 else {
            throw Self.error("EVP_CipherInit_ex2(nonce)")
        }
        var rest = aad
        while let base = rest.baseAddress, rest.count > 0 {
            let n = min(rest.count, Int(Int32.max))
            var out: Int32 = 0
            guard EVP_CipherUpdate(ctx, nil, &out, base.assumingMemoryBound(to: UInt8.self), Int32(n)) == 1 else {
                throw Self.error("EVP_CipherUpdate(aad)")
            }
            rest = UnsafeRawBufferPointer(rebasing: rest[n...])
        }
    }

    private func update(_ data: UnsafeMutableRawBufferPointer) throws(KerberosCryptoError) {
        var offset = 0
        while offset < data.count, let base = data.baseAddress {
            let n = min(data.count - offset, 1 << 30)
            let p = (base + offset).assumingMemoryBound(to: UInt8.self)
            var out: Int32 = 0
            guard EVP_CipherUpdate(ctx, p, &out, p, Int32(n)) == 1, Int(out) == n else {
                throw Self.error("EVP_CipherUpdate")
            }
            offset += n
        }
    }

    private static func error(_ what: String) -> KerberosCryptoError { LibCrypto.lastError(what) }
}
