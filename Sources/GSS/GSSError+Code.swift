/// Equality of ``GSSError`` by its code, as swift-certificates' errors compare: two failures are
/// the same when the same routine failed with the same major and minor status. The texts
/// (`gss_display_status`, the explanation) and a peer token are details of one occurrence, not
/// part of its identity, so they are not compared.
extension GSSError {
    /// The stable identity of a GSSAPI failure: operation, major status, minor status.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let operation: GSSOperation
        public let major: GSSMajorStatus
        public let minor: UInt32

        public init(operation: GSSOperation, major: GSSMajorStatus, minor: UInt32) {
            self.operation = operation
            self.major = major
            self.minor = minor
        }

        /// `gss_accept_sec_context GSS_S_FAILURE minor 0x96C73A07`.
        public var description: String {
            "\(operation.rawValue) \(major) minor 0x" + String(minor, radix: 16, uppercase: true)
        }
    }

    /// This failure's code.
    public var code: Code { Code(operation: operation, major: major, minor: minor) }

    public static func == (lhs: GSSError, rhs: GSSError) -> Bool { lhs.code == rhs.code }

    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
