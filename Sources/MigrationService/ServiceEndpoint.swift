import MigrationVocabulary
import NIOCore

/// A loopback IPv4 address and TCP port. Anything outside 127.0.0.0/8 is refused: the service
/// never binds or connects to a non-loopback address.
public struct ServiceEndpoint: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Dotted IPv4 address inside 127.0.0.0/8.
    public let address: String
    /// TCP port; 0 means "any free port" when binding.
    public let port: Int

    public init(address: String, port: Int) throws(MigrationServiceError) {
        try Self.checkLoopback(address)
        guard (0...65535).contains(port) else {
            throw .configuration("Port \(port) is outside 0…65535", stage: .source)
        }
        self.address = address
        self.port = port
    }

    /// Parses `127.0.0.12:6600`.
    public init(parsing text: String) throws(MigrationServiceError) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else {
            throw .configuration("'\(text)' is not ADDRESS:PORT", stage: .source)
        }
        try self.init(address: String(text[..<colon]), port: port)
    }

    public var description: String { "\(address):\(port)" }

    /// Throws unless `address` is an IPv4 address in 127.0.0.0/8.
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
