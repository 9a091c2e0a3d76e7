import WindowsStatus

/// Equality of ``MigrationServiceError`` by its code, as swift-certificates' errors compare: two
/// failures are the same when the same kind of failure ended the same end of a migration with the
/// same HRESULT. The texts (Hyper-V's message, the detail, the GSS failure behind it) describe one
/// occurrence and are not part of its identity.
extension MigrationServiceError {
    /// The stable identity of a migration failure: kind, HRESULT, and the end that failed.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let kind: Kind
        public let status: UInt32
        public let stage: MigrationStage

        public init(kind: Kind, status: UInt32, stage: MigrationStage) {
            self.kind = kind
            self.status = status
            self.stage = stage
        }

        /// `authentication 0x8009030E at the source`.
        public var description: String {
            "\(kind) 0x" + String(status, radix: 16, uppercase: true) + " at the \(stage.rawValue.lowercased())"
        }
    }

    /// This failure's code.
    public var code: Code { Code(kind: kind, status: status.code, stage: stage) }

    public static func == (lhs: MigrationServiceError, rhs: MigrationServiceError) -> Bool { lhs.code == rhs.code }

    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
