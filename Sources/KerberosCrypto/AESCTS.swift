import CLibCrypto

/// AES in CBC mode with ciphertext stealing, CS3 variant, zero initial vector (RFC 3962 §5),
/// over messages given as several pieces so callers need not copy them together.
///
/// All but the last two blocks go through OpenSSL's AES-CBC in one pass (AES-NI, pipelined
/// decryption); the last two (16 < n ≤ 32 octets) go through OpenSSL's AES-CBC-CTS ("CS3") with the
/// preceding ciphertext block as IV, which is the same computation as one CTS pass over the whole.
package enum AESCTS {
    static let blockSize = 16
    /// Work is done in runs of this size so a caller's HMAC sees each run while it is in L1/L2.
    static let chunkLength = 16 * 1024

    /// Sees each run of an encryption, in order: the plaintext before it is encrypted (it may be
    /// overwritten in place), or the ciphertext after.
    typealias Observer = (UnsafeRawBufferPointer) throws -> Void

    /// Where the bulk (plain CBC) part ends for a message of `length` octets.
    private static func bulkLength(_ length: Int) -> Int {
        max(0, (length + blockSize - 1) / blockSize - 2) * blockSize
    }

    /// Encrypts the concatenation of `pieces` (≥ 16 octets in total) into `out`, `length` octets.
    package static func encrypt(key: KerberosKey, pieces: [UnsafeRawBufferPointer], into out: UnsafeMutableRawPointer,
                        length: Int) throws {
        try encrypt(key: AESContexts(key: key), pieces: pieces,
                    into: [UnsafeMutableRawBufferPointer(start: out, count: length)])
    }

    /// Encrypts the concatenation of `pieces` (≥ 16 octets) into the concatenation of `outputs`
    /// (same total length). An output piece may be the input piece at the same stream offset
    /// (exact in-place encryption, as `wrapInPlace` does with the caller's data).
    static func encrypt(key: AESContexts, pieces: [UnsafeRawBufferPointer], into outputs: [UnsafeMutableRawBufferPointer],
                        beforeRun: Observer? = nil, afterRun: Observer? = nil) throws {
        let length = outputs.reduce(0) { $0 + $1.count }
        guard length >= blockSize else { throw KerberosCryptoError.libcrypto("AES-CTS needs at least one block") }
        guard pieces.reduce(0, { $0 + $1.count }) == length else {
            throw KerberosCryptoError.bufferTooSmall(needed: length)
        }
        let bulk = bulkLength(length)
        var reader = ReadCursor(pieces: pieces)
        var writer = WriteCursor(pieces: outputs)
        try withUnsafeTemporaryAllocation(byteCount: 4 * blockSize, alignment: 16) { scratch in
            let base = scratch.baseAddress!
            let tmpIn = base, tmpOut = base + 2 * blockSize
            // The tail's IV: the last ciphertext block of the bulk part (zero when there is none).
            var lastBlock = (UInt64(0), UInt64(0))
            do {
                if bulk > 0 { try key.with(.cbcEncrypt, iv: nil) { ctx in
                    /// Encrypts `n` octets (whole blocks), showing them to the observers.
                    func run(_ input: UnsafeRawPointer, _ output: UnsafeMutableRawPointer, _ n: Int) throws {
                        var outl: Int32 = 0
                        try beforeRun?(UnsafeRawBufferPointer(start: input, count: n))
                        guard EVP_CipherUpdate(ctx, output.assumingMemoryBound(to: UInt8.self), &outl,
                                               input.assumingMemoryBound(to: UInt8.self), Int32(n)) == 1,
                              Int(outl) == n else {
                            throw LibCrypto.lastError("EVP_CipherUpdate(CBC)")
                        }
                        try afterRun?(UnsafeRawBufferPointer(start: output, count: n))
                        withUnsafeMutableBytes(of: &lastBlock) {
                            $0.copyMemory(from: UnsafeRawBufferPointer(start: output + n - blockSize, count: blockSize))
                        }
                    }
                    var position = 0
                    while position < bulk {
                        guard let (target, available) = writer.currentRun() else {
                            throw KerberosCryptoError.libcrypto("AES-CTS output pieces too short")
                        }
                        let chunk = reader.next(max: min(available, bulk - position, chunkLength))
                        let n = chunk.count & ~(blockSize - 1)
                        if n > 0, let input = chunk.baseAddress {
                            reader.back(chunk.count - n)
                            try run(input, target, n)
                            writer.advance(n)
                            position += n
                        } else {
                            // A block straddling two input or output pieces.
                            reader.back(chunk.count)
                            reader.copy(into: tmpIn, count: blockSize)
                            try run(UnsafeRawPointer(tmpIn), tmpOut, blockSize)
                            writer.scatter(from: UnsafeRawPointer(tmpOut), count: blockSize)
                            position += blockSize
                        }
                    }
                } }
                let tail = length - bulk
                reader.copy(into: tmpIn, count: tail)
                try beforeRun?(UnsafeRawBufferPointer(start: tmpIn, count: tail))
                try withUnsafeBytes(of: lastBlock) { iv in
                    try runTail(key, tail == blockSize ? .cbcEncrypt : .ctsEncrypt, iv: bulk > 0 ? iv.baseAddress : nil,
                                input: UnsafeRawPointer(tmpIn), output: tmpOut, count: tail)
                }
                try afterRun?(UnsafeRawBufferPointer(start: tmpOut, count: tail))
                writer.scatter(from: UnsafeRawPointer(tmpOut), count: tail)
            }
            scratch.initializeMemory(as: UInt8.self, repeating: 0)  // plaintext tail
        }
    }

    /// Decrypts `length` octets at `input` (≥ 16) into `pieces`, whose total length is `length`.
    /// A piece may be the input region itself (exact in-place decryption).
    package static func decrypt(key: AESContexts, input: UnsafeRawPointer, length: Int,
                        into pieces: [UnsafeMutableRawBufferPointer],
                        beforeRun: ((UnsafeRawBufferPointer) throws -> Void)? = nil,
                        afterRun: ((UnsafeRawBufferPointer) throws -> Void)? = nil) throws {
        guard length >= blockSize else { throw KerberosCryptoError.defectiveToken("ciphertext shorter than one AES block") }
        let bulk = bulkLength(length)
        var writer = WriteCursor(pieces: pieces)
        // The tail's IV is the last bulk ciphertext block: save it before in-place decryption overwrites it.
        var iv = [UInt8](repeating: 0, count: blockSize)
        if bulk > 0 { iv.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(start: input + bulk - blockSize, count: blockSize)) } }
        do {
            var tmp = [UInt8](repeating: 0, count: 2 * blockSize)
            if bulk > 0 { try key.with(.cbcDecrypt, iv: nil) { ctx in
                var position = 0
                while position < bulk {
                    guard let (target, available) = writer.currentRun() else {
                        throw KerberosCryptoError.libcrypto("AES-CTS output pieces too short")
                    }
                    let wanted = min(available, bulk - position, chunkLength)
                    var outl: Int32 = 0
                    if wanted >= blockSize {
                        let n = wanted & ~(blockSize - 1)
                        try beforeRun?(UnsafeRawBufferPointer(start: input + position, count: n))
                        guard EVP_CipherUpdate(ctx, target.assumingMemoryBound(to: UInt8.self), &outl,
                                               (input + position).assumingMemoryBound(to: UInt8.self),
                                               Int32(n)) == 1, Int(outl) == n else {
                            throw LibCrypto.lastError("EVP_CipherUpdate(CBC)")
                        }
                        try afterRun?(UnsafeRawBufferPointer(start: target, count: n))
                        writer.advance(n)
                        position += n
                    } else {
                        // A block straddling two pieces.
                        try beforeRun?(UnsafeRawBufferPointer(start: input + position, count: blockSize))
                        try tmp.withUnsafeMutableBytes { (t) throws in
                            guard EVP_CipherUpdate(ctx, t.baseAddress!.assumingMemoryBound(to: UInt8.self), &outl,
                                                   (input + position).assumingMemoryBound(to: UInt8.self),
                                                   Int32(blockSize)) == 1, Int(outl) == blockSize else {
                                throw LibCrypto.lastError("EVP_CipherUpdate(CBC)")
                            }
                            try afterRun?(UnsafeRawBufferPointer(rebasing: t[0..<blockSize]))
                            writer.scatter(from: UnsafeRawPointer(t.baseAddress!), count: blockSize)
                        }
                        position += blockSize
                    }
                }
            } }
            let tail = length - bulk
            try beforeRun?(UnsafeRawBufferPointer(start: input + bulk, count: tail))
            try tmp.withUnsafeMutableBytes { (t) throws in
                try iv.withUnsafeBytes { (ivBytes) throws in
                    try runTail(key, tail == blockSize ? .cbcDecrypt : .ctsDecrypt, iv: bulk > 0 ? ivBytes.baseAddress : nil,
                                input: input + bulk, output: t.baseAddress!, count: tail)
                }
                try afterRun?(UnsafeRawBufferPointer(rebasing: t[0..<tail]))
                writer.scatter(from: UnsafeRawPointer(t.baseAddress!), count: tail)
                t.initializeMemory(as: UInt8.self, repeating: 0)
            }
        }
    }

    /// One CTS (or, for exactly one block, CBC) pass over the last one or two blocks.
    private static func runTail(_ key: AESContexts, _ kind: AESContexts.Kind, iv: UnsafeRawPointer?,
                                input: UnsafeRawPointer, output: UnsafeMutableRawPointer, count: Int) throws {
        try key.with(kind, iv: iv) { ctx in
            var outl: Int32 = 0
            guard EVP_CipherUpdate(ctx, output.assumingMemoryBound(to: UInt8.self), &outl,
                                   input.assumingMemoryBound(to: UInt8.self), Int32(count)) == 1,
                  Int(outl) == count else {
                throw LibCrypto.lastError("EVP_CipherUpdate(\(kind))")
            }
        }
    }
}

/// The AES-CBC and AES-CBC-CTS ("CS3") contexts of one key, keyed once and reused: a message takes
/// a context, sets its IV and gives it back, so the key schedule and the CTS parameter are set up
/// once per key rather than per message. Thread-safe: concurrent users get separate contexts
/// (one of each kind is kept). OpenSSL wipes the key schedules when the contexts are freed.
package final class AESContexts: @unchecked Sendable {
    enum Kind: Int, CustomStringConvertible {
        case cbcEncrypt, cbcDecrypt, ctsEncrypt, ctsDecrypt
        var encrypts: Bool { self == .cbcEncrypt || self == .ctsEncrypt }
        var steals: Bool { self == .ctsEncrypt || self == .ctsDecrypt }
        var description: String { steals ? "CTS" : "CBC" }
    }

    private let key: KerberosKey
    private let cbc: OpaquePointer
    private let cts: OpaquePointer
    private let idle = IdleContexts(slots: 4)

    package init(key: KerberosKey) throws {
        self.key = key
        (cbc, cts) = try LibCrypto.aes(keyLength: key.length)
    }

    deinit { for ctx in idle.drain() { EVP_CIPHER_CTX_free(ctx) } }

    /// Runs `body` with a context of `kind` whose IV is `iv` (nil: zero), padding off.
    func with<R>(_ kind: Kind, iv: UnsafeRawPointer?, _ body: (OpaquePointer) throws -> R) throws -> R {
        let ctx = try idle.take(kind.rawValue) ?? make(kind)
        defer { if !idle.giveBack(ctx, to: kind.rawValue) { EVP_CIPHER_CTX_free(ctx) } }
        // Re-initialising with only an IV keeps the key schedule and the CTS mode.
        let ok = withUnsafeBytes(of: (UInt64(0), UInt64(0))) { zero in
            EVP_CipherInit_ex2(ctx, nil, nil, (iv ?? zero.baseAddress)?.assumingMemoryBound(to: UInt8.self),
                               kind.encrypts ? 1 : 0, nil)
        }
        guard ok == 1 else { throw LibCrypto.lastError("EVP_CipherInit_ex2(\(kind), IV)") }
        return try body(ctx)
    }

    private func make(_ kind: Kind) throws -> OpaquePointer {
        guard let ctx = EVP_CIPHER_CTX_new() else { throw LibCrypto.lastError("EVP_CIPHER_CTX_new") }
        let ok = key.withUnsafeBytes { k in
            withUnsafeBytes(of: (UInt64(0), UInt64(0))) { zero in
                let keyPtr = k.baseAddress?.assumingMemoryBound(to: UInt8.self)
                let ivPtr = zero.baseAddress?.assumingMemoryBound(to: UInt8.self)
                return kind.steals ? migauth_cts3_init(ctx, cts, keyPtr, ivPtr, kind.encrypts ? 1 : 0)
                    : EVP_CipherInit_ex2(ctx, cbc, keyPtr, ivPtr, kind.encrypts ? 1 : 0, nil)
            }
        }
        guard ok == 1 else {
            EVP_CIPHER_CTX_free(ctx)
            throw LibCrypto.lastError("EVP_CipherInit_ex2(\(kind))")
        }
        if !kind.steals { EVP_CIPHER_CTX_set_padding(ctx, 0) }
        return ctx
    }
}

/// Reads consecutive octets from a list of buffers.
struct ReadCursor {
    let pieces: [UnsafeRawBufferPointer]
    var index = 0
    var offset = 0

    /// The next run of at most `max` octets (empty at the end).
    mutating func next(max: Int) -> UnsafeRawBufferPointer {
        while index < pieces.count, offset >= pieces[index].count { index += 1; offset = 0 }
        guard index < pieces.count else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        let piece = pieces[index]
        let n = min(max, piece.count - offset)
        defer { offset += n }
        return UnsafeRawBufferPointer(rebasing: piece[offset..<(offset + n)])
    }

    /// Gives back the last `count` octets taken by `next` (within the same piece).
    mutating func back(_ count: Int) { offset -= count }

    /// Copies the next `count` octets to `target`.
    mutating func copy(into target: UnsafeMutableRawPointer, count: Int) {
        var done = 0
        while done < count {
            let run = next(max: count - done)
            guard run.count > 0, let base = run.baseAddress else { return }
            (target + done).copyMemory(from: base, byteCount: run.count)
            done += run.count
        }
    }
}

/// Writes consecutive octets into a list of buffers.
struct WriteCursor {
    let pieces: [UnsafeMutableRawBufferPointer]
    var index = 0
    var offset = 0

    /// The current writable run (skipping empty pieces), or nil at the end.
    mutating func currentRun() -> (UnsafeMutableRawPointer, Int)? {
        while index < pieces.count, offset >= pieces[index].count { index += 1; offset = 0 }
        guard index < pieces.count, let base = pieces[index].baseAddress else { return nil }
        return (base + offset, pieces[index].count - offset)
    }

    mutating func advance(_ n: Int) { offset += n }

    /// Writes `count` octets from `source`, crossing piece boundaries.
    mutating func scatter(from source: UnsafeRawPointer, count: Int) {
        var done = 0
        while done < count, let (target, available) = currentRun() {
            let n = min(available, count - done)
            target.copyMemory(from: source + done, byteCount: n)
            advance(n)
            done += n
        }
    }
}
