import CLibCrypto

/// Thin, internal wrappers over OpenSSL 3 libcrypto: fetched ciphers, HMAC, PBKDF2, randomness.
package enum LibCrypto {
    /// Algorithm handles fetched once per process from the default provider (immutable, thread-safe).
    nonisolated(unsafe) static let aes128CBC = EVP_CIPHER_fetch(nil, "AES-128-CBC", nil)
    nonisolated(unsafe) static let aes256CBC = EVP_CIPHER_fetch(nil, "AES-256-CBC", nil)
    nonisolated(unsafe) static let aes128CTS = EVP_CIPHER_fetch(nil, "AES-128-CBC-CTS", nil)
    nonisolated(unsafe) static let aes256CTS = EVP_CIPHER_fetch(nil, "AES-256-CBC-CTS", nil)
    nonisolated(unsafe) static let hmac = EVP_MAC_fetch(nil, "HMAC", nil)

    /// The CBC and CTS ciphers for an AES key of `keyLength` octets.
    static func aes(keyLength: Int) throws -> (cbc: OpaquePointer, cts: OpaquePointer) {
        let pair = keyLength == 16 ? (aes128CBC, aes128CTS) : keyLength == 32 ? (aes256CBC, aes256CTS) : (nil, nil)
        guard let cbc = pair.0, let cts = pair.1 else {
            throw KerberosCryptoError.libcrypto("AES-\(keyLength * 8)-CBC/-CBC-CTS not available from the default provider")
        }
        return (cbc, cts)
    }

    /// The most recent libcrypto error as text.
    static func lastError(_ what: String) -> KerberosCryptoError {
        let code = ERR_get_error()
        guard code != 0 else { return .libcrypto(what) }
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        ERR_clear_error()
        let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return .libcrypto("\(what): \(text)")
    }

    /// Fills `buffer` from OpenSSL's DRBG.
    package static func randomBytes(_ buffer: UnsafeMutableRawBufferPointer) throws {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        guard RAND_bytes(base.assumingMemoryBound(to: UInt8.self), Int32(buffer.count)) == 1 else {
            throw lastError("RAND_bytes")
        }
    }

    /// Constant-time comparison of two equally long regions.
    static func constantTimeEqual(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        guard a.count > 0, let pa = a.baseAddress, let pb = b.baseAddress else { return true }
        return CRYPTO_memcmp(pa, pb, a.count) == 0
    }

    /// PBKDF2 with HMAC over `digest` ("SHA1", "SHA256", "SHA384").
    static func pbkdf2(password: [UInt8], salt: [UInt8], iterations: Int, digest: String,
                       length: Int) throws -> UnsafeMutableRawBufferPointer {
        guard let md = EVP_MD_fetch(nil, digest, nil) else { throw lastError("EVP_MD_fetch(\(digest))") }
        defer { EVP_MD_free(md) }
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: length, alignment: 16)
        let ok = password.withUnsafeBufferPointer { pw in
            salt.withUnsafeBufferPointer { s in
                pw.withMemoryRebound(to: CChar.self) { pwc in
                    PKCS5_PBKDF2_HMAC(pwc.baseAddress, Int32(pw.count), s.baseAddress, Int32(s.count),
                                      Int32(iterations), md, Int32(length),
                                      out.baseAddress?.assumingMemoryBound(to: UInt8.self))
                }
            }
        }
        guard ok == 1 else {
            OPENSSL_cleanse(out.baseAddress, length)
            out.deallocate()
            throw lastError("PKCS5_PBKDF2_HMAC")
        }
        return out
    }
}

/// A keyed HMAC, initialised once. Each computation takes a context (a kept one, reset to the
/// keyed state with `EVP_MAC_init(ctx, NULL, 0, NULL)`, or a new duplicate of the keyed template)
/// and gives it back when done, so no HMAC context is set up per message. Thread-safe.
final class HMACKey: @unchecked Sendable {
    private let template: OpaquePointer  // EVP_MAC_CTX, never mutated after init
    private let idle = IdleContexts(slots: 1)
    /// Full (untruncated) output length in octets.
    let outputLength: Int

    init(key: KerberosKey, digest: String) throws {
        guard let mac = LibCrypto.hmac, let ctx = EVP_MAC_CTX_new(mac) else {
            throw LibCrypto.lastError("EVP_MAC_CTX_new(HMAC)")
        }
        let ok = key.withUnsafeBytes { k in
            migauth_hmac_init(ctx, k.baseAddress?.assumingMemoryBound(to: UInt8.self), k.count, digest)
        }
        guard ok == 1 else {
            EVP_MAC_CTX_free(ctx)
            throw LibCrypto.lastError("EVP_MAC_init(HMAC-\(digest))")
        }
        template = ctx
        outputLength = EVP_MAC_CTX_get_mac_size(ctx)
    }

    deinit {
        for ctx in idle.drain() { EVP_MAC_CTX_free(ctx) }
        EVP_MAC_CTX_free(template)
    }

    /// HMAC over the concatenation of `pieces`, written to `out` (at least 64 octets).
    func compute(_ pieces: [UnsafeRawBufferPointer], into out: UnsafeMutableRawBufferPointer) throws {
        let stream = try start()
        for piece in pieces { try stream.update(piece) }
        try stream.finish(into: out)
    }

    /// A running HMAC for data that arrives in runs.
    func start() throws -> HMACStream {
        if let kept = idle.take(0) {
            guard EVP_MAC_init(kept, nil, 0, nil) == 1 else {
                EVP_MAC_CTX_free(kept)
                throw LibCrypto.lastError("EVP_MAC_init(reset)")
            }
            return HMACStream(ctx: kept, owner: self)
        }
        guard let ctx = EVP_MAC_CTX_dup(template) else { throw LibCrypto.lastError("EVP_MAC_CTX_dup") }
        return HMACStream(ctx: ctx, owner: self)
    }

    /// Takes back a context a stream is done with (keeps one, frees the rest).
    fileprivate func giveBack(_ ctx: OpaquePointer) {
        if !idle.giveBack(ctx, to: 0) { EVP_MAC_CTX_free(ctx) }
    }

    /// HMAC over `pieces` truncated to `length` octets, as an array.
    func compute(_ pieces: [UnsafeRawBufferPointer], truncatedTo length: Int) throws -> [UInt8] {
        var full = [UInt8](repeating: 0, count: 64)
        try full.withUnsafeMutableBytes { (out) throws in try compute(pieces, into: out) }
        return Array(full.prefix(length))
    }
}

/// One HMAC computation in progress (see ``HMACKey/start()``); its context goes back to the key.
final class HMACStream {
    private let ctx: OpaquePointer
    private let owner: HMACKey

    init(ctx: OpaquePointer, owner: HMACKey) {
        self.ctx = ctx
        self.owner = owner
    }

    deinit { owner.giveBack(ctx) }

    func update(_ data: UnsafeRawBufferPointer) throws {
        guard data.count > 0 else { return }
        guard EVP_MAC_update(ctx, data.baseAddress?.assumingMemoryBound(to: UInt8.self), data.count) == 1 else {
            throw LibCrypto.lastError("EVP_MAC_update")
        }
    }

    /// The full MAC, written to `out` (at least 64 octets).
    func finish(into out: UnsafeMutableRawBufferPointer) throws {
        var written = 0
        guard EVP_MAC_final(ctx, out.baseAddress?.assumingMemoryBound(to: UInt8.self), &written, out.count) == 1 else {
            throw LibCrypto.lastError("EVP_MAC_final")
        }
    }
}
