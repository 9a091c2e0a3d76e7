/// A problem with a scenario file: where it is (file, line, column, field) and what is wrong.
///
/// Every input error — malformed YAML, an unknown key, a wrong type, an unknown host or user,
/// contradictory settings — is reported as one of these, before anything is applied.
public struct ScenarioError: Error, Sendable, Hashable, Codable, CustomStringConvertible {
    /// The file the problem is in (`<string>` for YAML given as a string).
    public var file: String
    /// 1-based line, when known.
    public var line: Int?
    /// 1-based column, when known.
    public var column: Int?
    /// The field's path in the document, for example `steps[3].move.destination`.
    public var field: String?
    /// What is wrong.
    public var message: String

    public init(file: String, line: Int? = nil, column: Int? = nil, field: String? = nil, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.field = field
        self.message = message
    }

    /// `contoso.yaml:12:5: steps[3].move.destination: unknown host 'TestServer9'`
    public var description: String {
        var s = file
        if let line { s += ":\(line)" }
        if let column { s += ":\(column)" }
        s += ": "
        if let field, !field.isEmpty { s += "\(field): " }
        return s + message
    }
}
