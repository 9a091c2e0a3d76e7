import CLibCrypto

/// Secret key material for one enctype. The bytes live in memory this object owns and are
/// zeroed (`OPENSSL_cleanse`) when it is released; `description` never shows them.
package final class KerberosKey: @unchecked Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The enctype the key belongs to.
    package let enctype: Enctype
    // Immutable after init; only read afterwards, so sharing across threads is safe.
    private let storage: UnsafeMutableRawBufferPointer

    /// A protocol key (session key, subkey, base key) of `enctype`; its length must be `enctype.keyLength`.
    package convenience init(enctype: Enctype, bytes: some Collection<UInt8>) throws {
        guard bytes.count == enctype.keyLength else {
            throw KerberosCryptoError.invalidKey("\(enctype.name) needs a \(enctype.keyLength)-octet key, got \(bytes.count)")
        }
        self.init(enctype: enctype, unchecked: bytes)
    }

    /// Any-length key material (derived Ki/Kc may be shorter than a protocol key).
    package init(enctype: Enctype, unchecked bytes: some Collection<UInt8>) {
        self.enctype = enctype
        storage = .allocate(byteCount: max(bytes.count, 1), alignment: 16)
        UnsafeMutableRawBufferPointer(rebasing: storage[0..<bytes.count]).copyBytes(from: bytes)
        length = bytes.count
    }

    /// Takes ownership of `buffer` (allocated with `.allocate`), which is cleansed and freed on deinit.
    init(enctype: Enctype, adopting buffer: UnsafeMutableRawBufferPointer, length: Int) {
        self.enctype = enctype
        storage = buffer
        self.length = length
    }

    /// Key length in octets.
    package let length: Int

    deinit {
        if let base = storage.baseAddress {
            OPENSSL_cleanse(base, storage.count)
        }
        storage.deallocate()
    }

    /// Calls `body` with the raw key octets. Do not copy them out, and never log them.
    package func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(rebasing: storage[0..<length]))
    }

    package var description: String { "KerberosKey(\(enctype.name), \(length) octets, <redacted>)" }
    package var debugDescription: String { description }
}

extension KerberosKey {
    /// The key octets as an array: for known-answer tests only.
    package var bytesForTesting: [UInt8] { withUnsafeBytes { Array($0) } }
}
