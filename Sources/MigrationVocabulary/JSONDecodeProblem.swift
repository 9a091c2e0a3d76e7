import Foundation

/// Where and why a JSON file failed to decode: the line and column (1-based; the column counts characters) and
/// the path of the field (`hosts.h1`, `vms[2].name`), for messages such as
/// `host.json:4:14: field limits.maxConnections: expected a number (Int), found something else`.
///
/// `JSONDecoder` gives a coding path for a wrong type or a missing key but no position; the position is found by
/// walking the document along that path. For a syntax error it gives the position (in its description or as a
/// byte index), and no field.
public struct JSONDecodeProblem: Sendable, Hashable, CustomStringConvertible {
    /// 1-based line, nil when the document gave no way to place it.
    public let line: Int?
    /// 1-based column (characters from the start of the line).
    public let column: Int?
    /// The field's path (`a.b[0].c`), nil for a syntax error or the document as a whole.
    public let field: String?
    /// What is wrong, in plain words.
    public let reason: String

    public init(line: Int?, column: Int?, field: String?, reason: String) {
        self.line = line
        self.column = column
        self.field = field
        self.reason = reason
    }

    /// Analyses `error` (thrown by `JSONDecoder` or a type's `init(from:)`) for the document `data`.
    public init(_ error: any Error, in data: Data) {
        let bytes = [UInt8](data)
        var position: (line: Int, column: Int)?
        var field: String?
        var reason = "\(error)"
        if let decoding = error as? DecodingError {
            switch decoding {
            case .typeMismatch(let type, let context):
                field = Self.path(context.codingPath)
                reason = "expected \(Self.describe(type)): \(context.debugDescription)"
                position = Self.locate(context.codingPath, in: bytes).map { Self.lineColumn(of: $0, in: bytes) }
            case .valueNotFound(let type, let context):
                field = Self.path(context.codingPath)
                reason = "a value (\(Self.describe(type))) is required: \(context.debugDescription)"
                position = Self.locate(context.codingPath, in: bytes).map { Self.lineColumn(of: $0, in: bytes) }
            case .keyNotFound(let key, let context):
                field = Self.path(context.codingPath + [key])
                reason = "missing field \"\(key.stringValue)\""
                position = Self.locate(context.codingPath, in: bytes).map { Self.lineColumn(of: $0, in: bytes) }
            case .dataCorrupted(let context):
                if context.codingPath.isEmpty, let syntax = Self.syntaxError(context.underlyingError, in: data) {
                    // A syntax error: the position is in the parser's error (JSONDecoder may not pass it on, so
                    // JSONSerialization parses the document again on this failure path).
                    reason = Self.syntaxReason(syntax) ?? context.debugDescription
                    position = Self.syntaxPosition(syntax, in: bytes)
                } else {
                    field = context.codingPath.isEmpty ? nil : Self.path(context.codingPath)
                    reason = context.debugDescription
                    position = Self.locate(context.codingPath, in: bytes).map { Self.lineColumn(of: $0, in: bytes) }
                }
            @unknown default:
                break
            }
        }
        self.init(line: position?.line, column: position?.column, field: field, reason: reason)
    }

    /// `4:14: field limits.maxConnections: expected …` (parts that are unknown are left out).
    public var description: String {
        var text = ""
        if let line { text += "\(line):" + (column.map { "\($0):" } ?? "") + " " }
        if let field, !field.isEmpty { text += "field \(field): " }
        return text + reason
    }

    /// `file:4:14: field …` — the form `migauth` prints.
    public func message(file: String) -> String {
        if line != nil { return "\(file):\(description)" }
        return "\(file): \(description)"
    }

    // MARK: Paths

    static func path(_ codingPath: [any CodingKey]) -> String {
        var text = ""
        for key in codingPath {
            if let index = key.intValue, key.stringValue.hasPrefix("Index ") {
                text += "[\(index)]"
            } else {
                text += (text.isEmpty ? "" : ".") + key.stringValue
            }
        }
        return text
    }

    static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        case is Int.Type, is Int64.Type, is Int32.Type, is UInt.Type, is UInt64.Type, is UInt32.Type, is UInt16.Type,
             is UInt8.Type: "a whole number (\(type))"
        case is Double.Type, is Float.Type: "a number"
        default: "\(type)"
        }
    }

    // MARK: Syntax errors

    /// The parser's own error for `data`: the underlying error when it places the fault, else JSONSerialization's.
    static func syntaxError(_ underlying: (any Error)?, in data: Data) -> (any Error)? {
        if let underlying, syntaxPosition(underlying, in: []) != nil { return underlying }
        do {
            _ = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
            return underlying
        } catch {
            return error
        }
    }

    /// The parser's text, without Foundation's framing.
    static func syntaxReason(_ error: any Error) -> String? {
        let ns = error as NSError
        return ns.userInfo[NSDebugDescriptionErrorKey] as? String
    }

    /// `… around line 3, column 7.` in the description, else the byte index Foundation records.
    static func syntaxPosition(_ error: any Error, in bytes: [UInt8]) -> (line: Int, column: Int)? {
        let ns = error as NSError
        if let text = ns.userInfo[NSDebugDescriptionErrorKey] as? String {
            if let found = parseLineColumn(text) { return found }
            // swift-corelibs-foundation: `Invalid value around character 190.` (a byte offset).
            if let range = text.range(of: "character "),
               let offset = Int(text[range.upperBound...].prefix { $0.isASCII && $0.isNumber }), !bytes.isEmpty {
                return lineColumn(of: min(offset, bytes.count), in: bytes)
            }
        }
        if let index = ns.userInfo["NSJSONSerializationErrorIndex"] as? Int, index >= 0 {
            return lineColumn(of: min(index, bytes.count), in: bytes)
        }
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? any Error {
            return syntaxPosition(underlying, in: bytes)
        }
        return nil
    }

    /// Finds `line N, column M` in `text`.
    static func parseLineColumn(_ text: String) -> (line: Int, column: Int)? {
        guard let lineRange = text.range(of: "line ") else { return nil }
        let afterLine = text[lineRange.upperBound...]
        let lineDigits = afterLine.prefix { $0.isASCII && $0.isNumber }
        guard let line = Int(lineDigits), let columnRange = afterLine.range(of: "column ") else { return nil }
        let columnDigits = afterLine[columnRange.upperBound...].prefix { $0.isASCII && $0.isNumber }
        guard let column = Int(columnDigits) else { return nil }
        return (line, column)
    }

    // MARK: Positions

    /// 1-based line and column (characters) of byte `offset`.
    static func lineColumn(of offset: Int, in bytes: [UInt8]) -> (line: Int, column: Int) {
        var line = 1
        var column = 1
        for byte in bytes.prefix(offset) {
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {  // not a UTF-8 continuation byte
                column += 1
            }
        }
        return (line, column)
    }

    /// The byte offset of the value at `codingPath` (nil when the document does not have it).
    static func locate(_ codingPath: [any CodingKey], in bytes: [UInt8]) -> Int? {
        var scanner = Scanner(bytes: bytes)
        scanner.skipSpace()
        for key in codingPath {
            guard let next = scanner.enter(key) else { return nil }
            scanner.index = next
        }
        return scanner.index
    }

    /// A forgiving walk over JSON bytes (the document is known to be syntactically valid when a path is looked up).
    struct Scanner {
        let bytes: [UInt8]
        var index = 0

        init(bytes: [UInt8]) {
            self.bytes = bytes
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }  // UTF-8 byte order mark
        }

        var current: UInt8? { index < bytes.count ? bytes[index] : nil }

        mutating func skipSpace() {
            while let c = current, c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D { index += 1 }
        }

        /// Skips one string starting at `"`; returns its raw bytes (with the quotes).
        mutating func skipString() -> ArraySlice<UInt8>? {
            guard current == UInt8(ascii: "\"") else { return nil }
            let start = index
            index += 1
            while let c = current {
                index += 1
                if c == UInt8(ascii: "\\") { index += 1 } else if c == UInt8(ascii: "\"") { return bytes[start..<index] }
            }
            return nil
        }

        /// Skips one value of any kind.
        mutating func skipValue() -> Bool {
            skipSpace()
            guard let c = current else { return false }
            switch c {
            case UInt8(ascii: "\""):
                return skipString() != nil
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                var depth = 0
                while let d = current {
                    if d == UInt8(ascii: "\"") {
                        guard skipString() != nil else { return false }
                        continue
                    }
                    if d == UInt8(ascii: "{") || d == UInt8(ascii: "[") { depth += 1 }
                    if d == UInt8(ascii: "}") || d == UInt8(ascii: "]") { depth -= 1 }
                    index += 1
                    if depth == 0 { return true }
                }
                return false
            default:
                while let d = current, !(d == UInt8(ascii: ",") || d == UInt8(ascii: "}") || d == UInt8(ascii: "]")
                                         || d == 0x20 || d == 0x09 || d == 0x0A || d == 0x0D) { index += 1 }
                return true
            }
        }

        /// From the value at `index` (an object or array), the offset of the member named by `key`.
        func enter(_ key: any CodingKey) -> Int? {
            var s = self
            s.skipSpace()
            if s.current == UInt8(ascii: "["), let wanted = key.intValue {
                s.index += 1
                var position = 0
                while true {
                    s.skipSpace()
                    if s.current == UInt8(ascii: "]") || s.current == nil { return nil }
                    if position == wanted { return s.index }
                    guard s.skipValue() else { return nil }
                    s.skipSpace()
                    guard s.current == UInt8(ascii: ",") else { return nil }
                    s.index += 1
                    position += 1
                }
            }
            guard s.current == UInt8(ascii: "{") else { return nil }
            s.index += 1
            while true {
                s.skipSpace()
                guard let raw = s.skipString() else { return nil }
                let name = (try? JSONDecoder().decode(String.self, from: Data(raw))) ?? ""
                s.skipSpace()
                guard s.current == UInt8(ascii: ":") else { return nil }
                s.index += 1
                s.skipSpace()
                if name == key.stringValue { return s.index }
                guard s.skipValue() else { return nil }
                s.skipSpace()
                guard s.current == UInt8(ascii: ",") else { return nil }
                s.index += 1
            }
        }
    }
}
