import Foundation
import WindowsStatus

/// The line-level LDIF reader behind ``LDIF/read(_:file:)``: unfolds lines, drops comments,
/// decodes values and groups them into records.
struct LDIFParser {
    let file: String
    private(set) var records: [LDIFRecord] = []
    private(set) var notes: [LDIFNote] = []
    private var current: LDIFRecord? = nil
    /// The rest of the record is skipped (a search reference or a result summary).
    private var skipping = false
    private var logical: [UInt8] = []
    private var logicalLine = 0
    private var inComment = false

    init(file: String) { self.file = file }

    func error(_ message: String, line: Int, attribute: String? = nil) -> DirectoryError {
        DirectoryError(status: .invalidArgument, message: message, file: file, line: line, attribute: attribute)
    }

    /// Reads every line of `bytes` (LF or CRLF).
    mutating func run(_ bytes: [UInt8]) throws(DirectoryError) {
        var lineNumber = 0
        var start = 0
        let n = bytes.count
        while start < n {
            var end = start
            while end < n, bytes[end] != UInt8(ascii: "\n") { end += 1 }
            lineNumber += 1
            var lineEnd = end
            if lineEnd > start, bytes[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
            try take(bytes[start..<lineEnd], number: lineNumber)
            start = end + 1
        }
        try finishLogical()
        finishRecord()
    }

    private mutating func take(_ line: ArraySlice<UInt8>, number: Int) throws(DirectoryError) {
        guard let first = line.first else {
            try finishLogical()
            inComment = false
            finishRecord()
            return
        }
        if first == UInt8(ascii: " ") {
            if inComment { return }
            guard !logical.isEmpty else {
                throw error("Continuation line without a line to continue", line: number)
            }
            logical.append(contentsOf: line.dropFirst())
            return
        }
        try finishLogical()
        if first == UInt8(ascii: "#") { inComment = true; return }
        inComment = false
        logical.append(contentsOf: line)
        logicalLine = number
    }

    private mutating func finishRecord() {
        if let r = current, !skipping { records.append(r) }
        current = nil
        skipping = false
    }

    /// Splits one unfolded line into attribute and value and hands it on.
    private mutating func finishLogical() throws(DirectoryError) {
        defer { logical.removeAll(keepingCapacity: true) }
        if logical.isEmpty || skipping { return }
        guard let colon = logical.firstIndex(of: UInt8(ascii: ":")) else {
            throw error("Expected 'attribute: value'", line: logicalLine)
        }
        var name = String(decoding: logical[..<colon], as: UTF8.self)
        if let semi = name.firstIndex(of: ";") { name = String(name[..<semi]) }
        guard !name.isEmpty, name.utf8.allSatisfy({ LDIF.isAttrChar($0) }) else {
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
        let key = LDIF.asciiLower(name)
        var value = String(decoding: raw, as: UTF8.self)
        var binary = false
        if base64 { (value, binary) = try decode(raw, name: name, key: key) }
        try handle(name: name, key: key, value: value, binary: binary)
    }

    /// A base64 value: UTF-8 text, a SID or GUID in its text form, or other binary kept in base64.
    private func decode(_ raw: ArraySlice<UInt8>, name: String, key: String) throws(DirectoryError) -> (String, Bool) {
        guard let data = Data(base64Encoded: Data(raw)) else {
            throw error("Invalid base64 value", line: logicalLine, attribute: name)
        }
        let bytes = [UInt8](data)
        if key == "objectsid", let sid = BinaryValues.sid(bytes) { return (sid, false) }
        if key == "objectguid", let guid = BinaryValues.guid(bytes) { return (guid, false) }
        if let text = String(validating: bytes, as: UTF8.self) { return (text, false) }
        guard key != "dn" else { throw error("The DN is not UTF-8", line: logicalLine, attribute: name) }
        return (data.base64EncodedString(), true)
    }

    private mutating func handle(name: String, key: String, value: String, binary: Bool) throws(DirectoryError) {
        if key == "version" && current == nil && records.isEmpty && notes.isEmpty {
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
        if key == "ref" {
            // A search reference (ldapsearch, ldbsearch "# Referral"), or a referral object: not an entry.
            let what = current.map { "referral object \($0.dn) (\(value))" } ?? "search reference \(value)"
            notes.append(LDIFNote(file: file, line: current?.line ?? logicalLine, message: "skipped \(what)"))
            skipping = true
            return
        }
        guard current != nil else {
            if key == "search" || key == "result" || key == "control" { skipping = true; return }  // ldapsearch -L summaries
            throw error("Attribute '\(name)' before any 'dn:' line", line: logicalLine, attribute: name)
        }
        if key == "changetype" {
            guard value.lowercased() == "add" else {
                throw error("Only content records (or changetype: add) are supported, not '\(value)'", line: logicalLine, attribute: name)
            }
            return
        }
        current?.values.append(LDIFRecord.Value(name: name, value: value, line: logicalLine, binary: binary))
    }
}

/// Text forms of AD's binary identifiers, as `ldbsearch` and PowerShell show them.
public enum BinaryValues {
    /// `S-1-5-21-…` from a binary SID (revision, count, 48-bit authority, 32-bit little-endian sub-authorities).
    public static func sid(_ b: [UInt8]) -> String? {
        guard b.count >= 8, b[0] == 1 else { return nil }
        let count = Int(b[1])
        guard b.count == 8 + 4 * count else { return nil }
        var authority: UInt64 = 0
        for i in 2..<8 { authority = authority << 8 | UInt64(b[i]) }
        var text = "S-1-\(authority)"
        for k in 0..<count {
            let o = 8 + 4 * k
            let sub = UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24
            text += "-\(sub)"
        }
        return text
    }

    /// `7d75b28b-c967-4d87-a9da-59988e42d4e1` from a 16-byte GUID (first three fields little-endian).
    public static func guid(_ b: [UInt8]) -> String? {
        guard b.count == 16 else { return nil }
        let order = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15]
        let hex = order.map { b[$0] < 16 ? "0" + String(b[$0], radix: 16) : String(b[$0], radix: 16) }
        return hex[0..<4].joined() + "-" + hex[4..<6].joined() + "-" + hex[6..<8].joined() + "-"
            + hex[8..<10].joined() + "-" + hex[10..<16].joined()
    }
}
