import Synchronization

/// The credentials CredSSP delegates: domain, user name and password.
///
/// The values are held as UTF-16LE bytes (the wire form) that this object owns and overwrites with zeros in
/// ``wipe()`` and when it is released. `description`, `debugDescription` and reflection never show the password.
public final class CredSSPCredentials: Sendable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    private let storage: Mutex<TSPasswordCreds>

    /// Credentials from strings (encoded to UTF-16LE).
    public convenience init(domain: String, user: String, password: String) {
        self.init(wire: TSPasswordCreds(domainName: Self.utf16LE(domain), userName: Self.utf16LE(user),
                                        password: Self.utf16LE(password)))
    }

    /// Takes ownership of decoded wire credentials.
    init(wire: TSPasswordCreds) {
        self.storage = Mutex(wire)
    }

    deinit { wipe() }

    /// The domain (empty when the user name is a UPN or the domain is implied).
    public var domain: String { storage.withLock { Self.string($0.domainName) } }
    /// The user name.
    public var user: String { storage.withLock { Self.string($0.userName) } }
    /// The password as a `String`. The copy this returns cannot be wiped: prefer ``withPasswordUTF16LE(_:)``.
    public var password: String { storage.withLock { Self.string($0.password) } }

    /// Calls `body` with the password's UTF-16LE bytes without copying them into a `String`.
    public func withPasswordUTF16LE<T, E: Error>(_ body: ([UInt8]) throws(E) -> T) throws(E) -> T {
        try storage.withLock { credentials throws(E) in try body(credentials.password) }
    }

    /// True once ``wipe()`` has run.
    public var isWiped: Bool {
        storage.withLock { $0.domainName.isEmpty && $0.userName.isEmpty && $0.password.isEmpty }
    }

    /// Overwrites the domain, user and password bytes with zeros.
    public func wipe() { storage.withLock { $0.wipe() } }

    /// The wire form (a copy).
    var wire: TSPasswordCreds { storage.withLock { $0 } }

    public var description: String {
        storage.withLock {
            "CredSSPCredentials(domain: \"\(Self.string($0.domainName))\", user: \"\(Self.string($0.userName))\", password: <redacted>)"
        }
    }

    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["description": description]) }

    /// One buffer of the exact size (no growth leaving partial copies behind in freed memory).
    static func utf16LE(_ string: String) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(string.utf16.count * 2)
        for unit in string.utf16 {
            bytes.append(UInt8(truncatingIfNeeded: unit))
            bytes.append(UInt8(truncatingIfNeeded: unit >> 8))
        }
        return bytes
    }

    /// The intermediate UTF-16 buffer (the password's UTF-16LE bytes on a little-endian machine) is zeroed before it
    /// is freed; the returned `String` is the caller's.
    static func string(_ bytes: [UInt8]) -> String {
        var units: [UInt16] = []
        units.reserveCapacity(bytes.count / 2)
        defer { units.withUnsafeMutableBufferPointer { for index in $0.indices { $0[index] = 0 } } }
        var index = 0
        while index + 1 < bytes.count {
            units.append(UInt16(bytes[index]) | UInt16(bytes[index + 1]) << 8)
            index += 2
        }
        return String(decoding: units, as: UTF16.self)
    }
}
