import Foundation

/// One LDIF content record: a DN and its attribute values, with the lines they came from.
public struct LDIFRecord: Sendable, Hashable {
    public struct Value: Sendable, Hashable {
        /// The attribute type as written, without options (`member` for `member;range=0-1499`).
        public var name: String
        public var value: String
        /// 1-based line where the attribute starts.
        public var line: Int
        /// `name` lower-cased, for lookups.
        public var key: String
        /// True when the value is binary (not UTF-8) and `value` holds it in base64.
        /// (`objectSid` and `objectGUID` are converted to their text forms instead: `S-1-5-…`, a GUID.)
        public var binary: Bool

        public init(name: String, value: String, line: Int, binary: Bool = false) {
            self.name = name
            self.value = value
            self.line = line
            self.key = LDIFSyntax.asciiLower(name)
            self.binary = binary
        }
    }

    public var dn: String
    /// 1-based line of the `dn:` line.
    public var line: Int
    public var values: [Value]

    public init(dn: String, line: Int, values: [Value]) {
        self.dn = dn
        self.line = line
        self.values = values
    }

    /// All values of `name` (case-insensitive).
    public func all(_ name: String) -> [Value] {
        let k = LDIFSyntax.asciiLower(name)
        return values.filter { $0.key == k }
    }

    /// The first value of `name` (case-insensitive).
    public func first(_ name: String) -> Value? {
        let k = LDIFSyntax.asciiLower(name)
        return values.first { $0.key == k }
    }
}

/// Something an LDIF reader skipped on purpose (a search reference, an object the model does not
/// have), with where it was.
public struct LDIFNote: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    /// 1-based line of the record (0 when the note is about the whole file).
    public var line: Int
    public var message: String

    public init(file: String, line: Int, message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    /// `contoso.ldif:4419: skipped search reference ldap:///CN=Configuration,DC=contoso,DC=com`
    public var description: String { line > 0 ? "\(file):\(line): \(message)" : "\(file): \(message)" }
}

/// The content records of an LDIF file and what was skipped.
public struct LDIFDocument: Sendable, Hashable {
    public var records: [LDIFRecord]
    public var notes: [LDIFNote]

    public init(records: [LDIFRecord], notes: [LDIFNote]) {
        self.records = records
        self.notes = notes
    }
}

/// Why LDIF text could not be read: the file, 1-based line and attribute that are wrong.
public struct LDIFError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public var file: String
    public var line: Int
    public var attribute: String?

    public init(message: String, file: String, line: Int, attribute: String? = nil) {
        self.message = message
        self.file = file
        self.line = line
        self.attribute = attribute
    }

    public var description: String { "\(file):\(line): \(message)" }
}

/// Lexical helpers shared by the reader and the writer.
enum LDIFSyntax {
    /// ASCII lower-casing (attribute names are ASCII).
    static func asciiLower(_ s: String) -> String {
        if !s.utf8.contains(where: { $0 >= 65 && $0 <= 90 }) { return s }
        return String(decoding: s.utf8.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }, as: UTF8.self)
    }

    static func isAttrChar(_ c: UInt8) -> Bool {
        (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == UInt8(ascii: "-") || c == UInt8(ascii: ".")
    }
}
