import Foundation
import WindowsStatus

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
            self.key = LDIF.asciiLower(name)
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
        let k = LDIF.asciiLower(name)
        return values.filter { $0.key == k }
    }

    /// The first value of `name` (case-insensitive).
    public func first(_ name: String) -> Value? {
        let k = LDIF.asciiLower(name)
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
}

/// Reads and writes LDIF (RFC 2849) as `ldifde -f`, `ldapsearch -LLL` and Samba's `ldbsearch` produce it:
/// `version: 1`, comments, folded lines (continuations start with one space), `attr:: base64`
/// (binary values such as `objectSid`/`objectGUID` included), `changetype: add`, and search
/// references (`ref: ldap://…` records), which are skipped with a note.
public enum LDIF {
    /// Parses content records. Errors name `file`, the line and the attribute.
    public static func parse(_ text: String, file: String = "<ldif>") throws(DirectoryError) -> [LDIFRecord] {
        try read(text, file: file).records
    }

    /// Parses content records and notes what was skipped (search references, result summaries).
    public static func read(_ text: String, file: String = "<ldif>") throws(DirectoryError) -> LDIFDocument {
        var parser = LDIFParser(file: file)
        try parser.run(Array(text.utf8))
        return LDIFDocument(records: parser.records, notes: parser.notes)
    }

    /// ASCII lower-casing (attribute names are ASCII).
    static func asciiLower(_ s: String) -> String {
        if !s.utf8.contains(where: { $0 >= 65 && $0 <= 90 }) { return s }
        return String(decoding: s.utf8.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }, as: UTF8.self)
    }

    static func isAttrChar(_ c: UInt8) -> Bool {
        (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == UInt8(ascii: "-") || c == UInt8(ascii: ".")
    }

    /// Writes records with `version: 1`, base64 where RFC 2849 requires it, lines folded at 76 columns.
    public static func write(_ records: [LDIFRecord], header: String? = nil) -> String {
        var out = ""
        if let header {
            for l in header.split(separator: "\n", omittingEmptySubsequences: false) { out += "# \(l)\n" }
        }
        out += "version: 1\n"
        for r in records {
            out += "\n"
            out += line("dn", r.dn)
            for v in r.values { out += v.binary ? fold("\(v.name):: \(v.value)") + "\n" : line(v.name, v.value) }
        }
        return out
    }

    /// One attribute line, base64-encoded when needed and folded.
    static func line(_ name: String, _ value: String) -> String {
        let text: String
        if needsBase64(value) {
            text = "\(name):: " + Data(value.utf8).base64EncodedString()
        } else {
            text = "\(name): \(value)"
        }
        return fold(text) + "\n"
    }

    static func needsBase64(_ value: String) -> Bool {
        guard let f = value.utf8.first else { return false }
        if f == UInt8(ascii: " ") || f == UInt8(ascii: ":") || f == UInt8(ascii: "<") { return true }
        if value.utf8.last == UInt8(ascii: " ") { return true }
        return value.utf8.contains { $0 == 0 || $0 == 10 || $0 == 13 || $0 > 127 }
    }

    static func fold(_ line: String, width: Int = 76) -> String {
        let u = Array(line.utf8)
        guard u.count > width else { return line }
        var out = String(decoding: u[0..<width], as: UTF8.self)
        var i = width
        while i < u.count {
            let e = min(i + width - 1, u.count)
            out += "\n " + String(decoding: u[i..<e], as: UTF8.self)
            i = e
        }
        return out
    }
}
