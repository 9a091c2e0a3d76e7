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

        public init(name: String, value: String, line: Int) {
            self.name = name
            self.value = value
            self.line = line
            self.key = LDIF.asciiLower(name)
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

/// Reads and writes LDIF (RFC 2849) as `ldifde -f` and `ldapsearch -LLL` produce it:
/// `version: 1`, comments, folded lines (continuations start with one space), `attr:: base64`.
public enum LDIF {
    /// Parses content records. Errors name `file`, the line and the attribute.
    public static func parse(_ text: String, file: String = "<ldif>") throws(DirectoryError) -> [LDIFRecord] {
        var records: [LDIFRecord] = []
        var current: LDIFRecord? = nil
        var logical: [UInt8] = []
        var logicalLine = 0
        var inComment = false

        func error(_ message: String, line: Int, attribute: String? = nil) -> DirectoryError {
            DirectoryError(status: .invalidArgument, message: message, file: file, line: line, attribute: attribute)
        }

        func finishLogical() throws(DirectoryError) {
            defer { logical.removeAll(keepingCapacity: true) }
            if logical.isEmpty { return }
            guard let colon = logical.firstIndex(of: UInt8(ascii: ":")) else {
                throw error("Expected 'attribute: value'", line: logicalLine)
            }
            var name = logical[..<colon].withUnsafeBufferPointer { String(decoding: $0, as: UTF8.self) }
            if let semi = name.firstIndex(of: ";") { name = String(name[..<semi]) }
            guard !name.isEmpty, name.utf8.allSatisfy({ isAttrChar($0) }) else {
                throw error("Invalid attribute name '\(name)'", line: logicalLine, attribute: name)
            }
            var i = colon + 1
            var base64 = false
            if i < logical.count, logical[i] == UInt8(ascii: ":") { base64 = true; i += 1 }
            else if i < logical.count, logical[i] == UInt8(ascii: "<") {
                throw error("URL values (':<') are not supported", line: logicalLine, attribute: name)
            }
            while i < logical.count, logical[i] == UInt8(ascii: " ") { i += 1 }
            let raw = logical[i...]
            let value: String
            if base64 {
                guard let data = Data(base64Encoded: Data(raw)), let s = String(data: data, encoding: .utf8) else {
                    throw error("Invalid base64 value", line: logicalLine, attribute: name)
                }
                value = s
            } else {
                value = raw.withUnsafeBufferPointer { String(decoding: $0, as: UTF8.self) }
            }
            let key = LDIF.asciiLower(name)
            if key == "version" && current == nil && records.isEmpty {
                guard value == "1" else { throw error("Unsupported LDIF version \(value)", line: logicalLine, attribute: name) }
                return
            }
            if key == "dn" {
                guard current == nil else {
                    throw error("A second 'dn:' in one record (records are separated by an empty line)", line: logicalLine, attribute: "dn")
                }
                guard value.isEmpty || DistinguishedName(value) != nil else {
                    throw error("Malformed DN '\(value)'", line: logicalLine, attribute: "dn")
                }
                current = LDIFRecord(dn: value, line: logicalLine, values: [])
                return
            }
            guard current != nil else {
                throw error("Attribute '\(name)' before any 'dn:' line", line: logicalLine, attribute: name)
            }
            if key == "changetype" {
                guard value.lowercased() == "add" else {
                    throw error("Only content records (or changetype: add) are supported, not '\(value)'", line: logicalLine, attribute: name)
                }
                return
            }
            current?.values.append(LDIFRecord.Value(name: name, value: value, line: logicalLine))
        }

        func finishRecord() {
            if let r = current { records.append(r) }
            current = nil
        }

        var lineNumber = 0
        let bytes = Array(text.utf8)
        var start = 0
        let n = bytes.count
        while start <= n {
            var end = start
            while end < n, bytes[end] != UInt8(ascii: "\n") { end += 1 }
            if start == n && end == n { break }
            lineNumber += 1
            var lineEnd = end
            if lineEnd > start, bytes[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
            let line = bytes[start..<lineEnd]
            start = end + 1
            if line.isEmpty {
                try finishLogical()
                inComment = false
                finishRecord()
                continue
            }
            let first = line[line.startIndex]
            if first == UInt8(ascii: " ") {
                if inComment { continue }
                guard !logical.isEmpty else {
                    throw error("Continuation line without a line to continue", line: lineNumber)
                }
                logical.append(contentsOf: line.dropFirst())
                continue
            }
            try finishLogical()
            if first == UInt8(ascii: "#") { inComment = true; continue }
            inComment = false
            logical.append(contentsOf: line)
            logicalLine = lineNumber
        }
        try finishLogical()
        finishRecord()
        return records
    }

    /// ASCII lower-casing (attribute names are ASCII).
    static func asciiLower(_ s: String) -> String {
        if !s.utf8.contains(where: { $0 >= 65 && $0 <= 90 }) { return s }
        return String(decoding: s.utf8.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }, as: UTF8.self)
    }

    private static func isAttrChar(_ c: UInt8) -> Bool {
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
            for v in r.values { out += line(v.name, v.value) }
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
