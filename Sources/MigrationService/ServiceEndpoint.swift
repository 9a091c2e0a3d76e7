import MigrationVocabulary
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// An IP address (IPv4 dotted or IPv6, literal: names are never resolved here) and a TCP port, wherever the
/// configuration says the daemon binds or connects. Loopback is what the tests and examples use, not a rule
/// of the type; rule N1 still decides which local addresses a destination accepts migrations on.
public struct ServiceEndpoint: Sendable, Hashable, Codable, CustomStringConvertible {
    /// A literal IPv4 (`192.168.10.2`) or IPv6 (`fd00::2`, without brackets) address.
    public let address: String
    /// TCP port; 0 means "any free port" when binding.
    public let port: Int

    public init(address: String, port: Int) throws(MigrationServiceError) {
        try Self.checkAddress(address)
        guard (0...65535).contains(port) else {
            throw .configuration("Port \(port) is outside 0…65535", stage: .source)
        }
        self.address = address
        self.port = port
    }

    /// Parses `127.0.0.12:6600`, `192.168.10.2:6600` or `[fd00::2]:6600`.
    public init(parsing text: String) throws(MigrationServiceError) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else {
            throw .configuration("'\(text)' is not ADDRESS:PORT", stage: .source)
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
            guard Self.isIPv6(host) else { throw .configuration("'\(text)': [\(host)] is not an IPv6 address", stage: .source) }
        } else if host.contains(":") {
            throw .configuration("'\(text)': write an IPv6 endpoint as [ADDRESS]:PORT", stage: .source)
        }
        try self.init(address: host, port: port)
    }

    /// `127.0.0.12:6600`, `[fd00::2]:6600`.
    public var description: String { address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)" }

    /// Throws unless `address` is a literal IPv4 or IPv6 address (host names are refused: they are
    /// resolved through the configuration's hosts table, never DNS).
    public static func checkAddress(_ address: String) throws(MigrationServiceError) {
        guard IPv4Address(address) != nil || isIPv6(address) else {
            throw .configuration("'\(address)' is not an IPv4 or IPv6 address", stage: .source)
        }
    }

    static func isIPv6(_ address: String) -> Bool {
        var raw = in6_addr()
        return !address.isEmpty && inet_pton(AF_INET6, address, &raw) == 1
    }

    /// Throws unless `address` is an IPv4 address in 127.0.0.0/8 (for harnesses that must stay on loopback).
    public static func checkLoopback(_ address: String) throws(MigrationServiceError) {
        guard let a = IPv4Address(address) else {
            throw .configuration("'\(address)' is not an IPv4 address (only loopback addresses are allowed)", stage: .source)
        }
        guard a.value >> 24 == 127 else {
            throw .configuration("\(address) is not a loopback address: this service only binds and connects inside 127.0.0.0/8",
                                 stage: .source)
        }
    }

    func socketAddress() throws(MigrationServiceError) -> SocketAddress {
        do {
            return try SocketAddress(ipAddress: address, port: port)
        } catch {
            throw .configuration("Bad address \(self): \(error)", stage: .source)
        }
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do {
            try self.init(parsing: text)
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.message))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

extension SocketAddress {
    /// `127.0.0.12:41234` (IPv4 only; other families as NIO prints them).
    var endpointText: String {
        if let ip = ipAddress, let port { return "\(ip):\(port)" }
        return "\(self)"
    }
}
