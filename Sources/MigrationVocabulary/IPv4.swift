/// An IPv4 address.
public struct IPv4Address: Sendable, Hashable, Codable, Comparable, CustomStringConvertible {
    public var value: UInt32

    public init(value: UInt32) { self.value = value }

    /// Parses dotted quad `192.168.10.5`.
    public init?(_ text: String) {
        var parts: [UInt32] = []
        var current: UInt32 = 0
        var digits = 0
        for u in text.utf8 {
            if u == UInt8(ascii: ".") {
                guard digits > 0 else { return nil }
                parts.append(current); current = 0; digits = 0
            } else if u >= 48 && u <= 57 {
                current = current * 10 + UInt32(u - 48); digits += 1
                guard digits <= 3, current <= 255 else { return nil }
            } else { return nil }
        }
        guard digits > 0 else { return nil }
        parts.append(current)
        guard parts.count == 4 else { return nil }
        value = parts[0] << 24 | parts[1] << 16 | parts[2] << 8 | parts[3]
    }

    public static func < (a: IPv4Address, b: IPv4Address) -> Bool { a.value < b.value }

    public var description: String {
        "\(value >> 24).\(value >> 16 & 0xFF).\(value >> 8 & 0xFF).\(value & 0xFF)"
    }

    public init(from decoder: any Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        guard let a = IPv4Address(s) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "Not an IPv4 address: \(s)"))
        }
        self = a
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// An IPv4 subnet in CIDR form, `192.168.10.0/24`. A bare address means `/32`.
public struct IPv4Subnet: Sendable, Hashable, Codable, CustomStringConvertible {
    public var network: IPv4Address
    public var prefixLength: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let addr = IPv4Address(String(parts[0])) else { return nil }
        var len = 32
        if parts.count == 2 {
            guard let l = Int(parts[1]), (0...32).contains(l) else { return nil }
            len = l
        }
        self.prefixLength = len
        self.network = IPv4Address(value: addr.value & IPv4Subnet.mask(len))
    }

    static func mask(_ len: Int) -> UInt32 { len == 0 ? 0 : UInt32.max << UInt32(32 - len) }

    @inlinable
    public func contains(_ address: IPv4Address) -> Bool {
        let m: UInt32 = prefixLength == 0 ? 0 : UInt32.max << UInt32(32 - prefixLength)
        return address.value & m == network.value
    }

    public var description: String { "\(network)/\(prefixLength)" }

    public init(from decoder: any Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        guard let n = IPv4Subnet(s) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "Not an IPv4 subnet: \(s)"))
        }
        self = n
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
