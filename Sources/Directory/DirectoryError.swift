import WindowsStatus

/// Why the directory refused an operation or an LDIF file. Nothing was changed when this is thrown.
public struct DirectoryError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The Windows status AD would return (for example ``WindowsStatus/dsInsufficientAccessRights``).
    public var status: WindowsStatus
    /// The rule of docs/rules.md this refusal enforces, when one does (`P2`).
    public var rule: String?
    /// A plain explanation naming the objects involved.
    public var message: String
    /// For LDIF input: the file, 1-based line and attribute that are wrong.
    public var file: String?
    public var line: Int?
    public var attribute: String?

    public init(status: WindowsStatus, rule: String? = nil, message: String,
                file: String? = nil, line: Int? = nil, attribute: String? = nil) {
        self.status = status
        self.rule = rule
        self.message = message
        self.file = file
        self.line = line
        self.attribute = attribute
    }

    public var description: String {
        var where_ = ""
        if let file { where_ += file }
        if let line { where_ += (where_.isEmpty ? "line " : ":") + String(line) }
        if let attribute { where_ += (where_.isEmpty ? "" : " ") + "(\(attribute))" }
        let prefix = where_.isEmpty ? "" : where_ + ": "
        return "\(prefix)\(message) [\(status.symbol) \(status.hex)]"
    }
}
