import Foundation

/// Reads LDIF (RFC 2849) as `ldifde -f`, `ldapsearch -LLL` and Samba's `ldbsearch` produce it: `version: 1`,
/// comments, folded lines (continuations start with one space), `attr:: base64`, `changetype: add`, and search
/// references (`ref: ldap://…` records) and `ldapsearch -L` result summaries, which are skipped (references with a
/// note). It knows no schema: ``Options`` let a caller turn binary values into text and check DNs.
public struct LDIFReader {
    /// What the reader leaves to its caller.
    public struct Options: Sendable {
        /// The text form of a base64 value of attribute `key` (lower-cased), or nil to keep the default (UTF-8 text,
        /// else the base64 kept with `binary` set). Directory turns `objectSid`/`objectGUID` into `S-1-5-…` / a GUID.
        public var binaryValue: (@Sendable (_ key: String, _ bytes: [UInt8]) -> String?)?
        /// Whether a `dn:` value is well formed (nil: any).
        public var isValidDN: (@Sendable (String) -> Bool)?

        public init(binaryValue: (@Sendable (_ key: String, _ bytes: [UInt8]) -> String?)? = nil,
                    isValidDN: (@Sendable (String) -> Bool)? = nil) {
            self.binaryValue = binaryValue
            self.isValidDN = isValidDN
        }
    }

    /// The content records of `text` and what was skipped. Errors name `file`, the line and the attribute.
    public static func read(_ text: String, file: String = "<ldif>", options: Options = Options()) throws(LDIFError) -> LDIFDocument {
        var reader = LDIFReader(file: file, options: options)
        try reader.run(Array(text.utf8))
        return LDIFDocument(records: reader.records, notes: reader.notes)
    }

    let options: Options
    let file: String
    private(set) var records: [LDIFRecord] = []
    private(set) var notes: [LDIFNote] = []
    private var current: LDIFRecord? = nil
    /// The rest of the record is skipped (a search reference or a result summary).
    private var skipping = false
    private var logical: [UInt8] = []
    private var logicalLine = 0
    private var inComment = false

    private init(file: String, options: Options) {
        self.file = file
        self.options = options
    }

    func error(_ message: String, line: Int, attribute: String? = nil) -> LDIFError {
        LDIFError(message: message, file: file, line: line, attribute: attribute)
    }

    /// Reads every line of `bytes` (LF or CRLF).
    private mutating func run(_ bytes: [UInt8]) throws(LDIFError) {
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

    private mutating func take(_ line: ArraySlice<UInt8>, number: Int) throws(LDIFError) {
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
    private mutating func finishLogical() throws(LDIFError) {
        defer { logical.removeAll(keepingCapacity: true) }
        if logical.isEmpty || skipping { return }
        guard let colon = logical.firstIndex(of: UInt8(ascii: ":")) else {
            throw error("Expected 'attribute: value'", line: logicalLine)
        }
        var name = String(decoding: logical[..<colon], as: UTF8.self)
        if let semi = name.firstIndex(of: ";") { name = String(name[..<semi]) }
        guard !name.isEmpty, name.utf8.allSatisfy({ LDIFSyntax.isAttrChar($0) }) else {
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
        let key = LDIFSyntax.asciiLower(name)
        var value = String(decoding: raw, as: UTF8.self)
        var binary = false
        if base64 { (value, binary) = try decode(raw, name: name, key: key) }
        try handle(name: name, key: key, value: value, binary: binary)
    }

    /// A base64 value: the caller's text form, UTF-8 text, or other binary kept in base64.
    private func decode(_ raw: ArraySlice<UInt8>, name: String, key: String) throws(LDIFError) -> (String, Bool) {
        guard let data = Data(base64Encoded: Data(raw)) else {
            throw error("Invalid base64 value", line: logicalLine, attribute: name)
        }
        let bytes = [UInt8](data)
        if let text = options.binaryValue?(key, bytes) { return (text, false) }
        if let text = String(validating: bytes, as: UTF8.self) { return (text, false) }
        guard key != "dn" else { throw error("The DN is not UTF-8", line: logicalLine, attribute: name) }
        return (data.base64EncodedString(), true)
    }

    private mutating func handle(name: String, key: String, value: String, binary: Bool) throws(LDIFError) {
        if key == "version" && current == nil && records.isEmpty && notes.isEmpty {
            guard value == "1" else { throw error("Unsupported LDIF version \(value)", line: logicalLine, attribute: name) }
            return
        }
        if key == "dn" {
            guard current == nil else {
                throw error("A second 'dn:' in one record (records are separated by an empty line)", line: logicalLine, attribute: "dn")
            }
            guard value.isEmpty || options.isValidDN?(value) != false else {
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
