import Foundation

/// RFC 4514 distinguished names: parsing into RDNs, escaping and unescaping values.
public struct DistinguishedName: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Relative distinguished names, most specific first: `[("CN","TestServer01"), ("CN","Computers"), ("DC","contoso"), ("DC","com")]`.
    /// Attribute types are upper-cased; values are unescaped.
    public var components: [RDN]

    public struct RDN: Sendable, Hashable, Codable {
        public var type: String
        public var value: String
        public init(type: String, value: String) {
            self.type = type.utf8.contains { $0 >= 97 && $0 <= 122 } ? type.uppercased() : type
            self.value = value
        }
    }

    public init(components: [RDN]) { self.components = components }

    /// Parses `CN=Smith\, John,OU=Sales,DC=contoso,DC=com`; nil when malformed.
    public init?(_ text: String) {
        if text.isEmpty { self.components = []; return }
        // Fast path: nothing escaped, quoted or multi-valued.
        if !text.utf8.contains(where: { $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "\"") }) {
            var comps: [RDN] = []
            for part in text.split(separator: ",", omittingEmptySubsequences: false) {
                guard let eq = part.firstIndex(of: "=") else { return nil }
                let type = trimSpaces(part[..<eq])
                guard !type.isEmpty else { return nil }
                comps.append(RDN(type: String(type), value: String(trimSpaces(part[part.index(after: eq)...]))))
            }
            self.components = comps
            return
        }
        var comps: [RDN] = []
        let chars = Array(text.unicodeScalars)
        var i = 0
        if chars.isEmpty { self.components = []; return }
        while i < chars.count {
            // type
            var type = ""
            while i < chars.count, chars[i] != "=" {
                if chars[i] == "," { return nil }
                type.unicodeScalars.append(chars[i]); i += 1
            }
            guard i < chars.count else { return nil }
            i += 1 // '='
            type = type.trimmingCharacters(in: .whitespaces)
            guard !type.isEmpty else { return nil }
            var value = String.UnicodeScalarView()
            var pendingBytes: [UInt8] = []
            func flush() {
                if !pendingBytes.isEmpty {
                    value.append(contentsOf: String(decoding: pendingBytes, as: UTF8.self).unicodeScalars)
                    pendingBytes.removeAll()
                }
            }
            var trailingSpaces = 0
            while i < chars.count, chars[i] != "," && chars[i] != "+" {
                let c = chars[i]
                if c == "\\" {
                    guard i + 1 < chars.count else { return nil }
                    let n = chars[i + 1]
                    if i + 2 < chars.count, let h = hexValue(n),
                       let l = hexValue(chars[i + 2]) {
                        pendingBytes.append(UInt8(h << 4 | l)); i += 3
                    } else {
                        flush(); value.append(n); i += 2
                    }
                    trailingSpaces = 0
                    continue
                }
                flush()
                value.append(c)
                trailingSpaces = c == " " ? trailingSpaces + 1 : 0
                i += 1
            }
            flush()
            var v = String(value)
            if trailingSpaces > 0 { v.removeLast(trailingSpaces) }
            while v.hasPrefix(" ") { v.removeFirst() }
            comps.append(RDN(type: type, value: v))
            if i < chars.count { i += 1 } // separator (multi-valued RDNs are flattened)
        }
        self.components = comps
    }

    /// The DNS name from the `DC=` components: `contoso.com`.
    public var domainDNSName: String? {
        let dcs = components.filter { $0.type == "DC" }.map(\.value)
        return dcs.isEmpty ? nil : dcs.joined(separator: ".")
    }

    /// The first RDN's value.
    public var name: String? { components.first?.value }

    /// True when some component is `OU=<name>` or `CN=<name>` (case-insensitive).
    public func contains(container name: String) -> Bool {
        components.dropFirst().contains { ($0.type == "OU" || $0.type == "CN") && $0.value.caseInsensitiveCompare(name) == .orderedSame }
    }

    /// The canonical string, values escaped.
    public var description: String {
        components.map { "\($0.type)=\(DistinguishedName.escape($0.value))" }.joined(separator: ",")
    }

    /// A canonical lower-cased form for comparing DNs.
    public var normalized: String { description.lowercased() }

    /// Escapes an attribute value for a DN (RFC 4514 section 2.4).
    public static func escape(_ value: String) -> String {
        var out = ""
        let scalars = Array(value.unicodeScalars)
        for (i, c) in scalars.enumerated() {
            switch c {
            case ",", "+", "\"", "\\", "<", ">", ";", "=":
                out += "\\"; out.unicodeScalars.append(c)
            case "#" where i == 0:
                out += "\\#"
            case " " where i == 0 || i == scalars.count - 1:
                out += "\\ "
            case "\0":
                out += "\\00"
            default:
                out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// Normalizes a DN string for comparison; falls back to lower-casing when it does not parse.
    public static func normalize(_ text: String) -> String {
        DistinguishedName(text)?.normalized ?? text.lowercased()
    }
}

/// Drops leading and trailing ASCII spaces.
private func trimSpaces(_ s: Substring) -> Substring {
    var t = s
    while t.utf8.first == UInt8(ascii: " ") { t = t.dropFirst() }
    while t.utf8.last == UInt8(ascii: " ") { t = t.dropLast() }
    return t
}

private func hexValue(_ c: Unicode.Scalar) -> Int? {
    switch c {
    case "0"..."9": return Int(c.value - 48)
    case "a"..."f": return Int(c.value - 97 + 10)
    case "A"..."F": return Int(c.value - 65 + 10)
    default: return nil
    }
}
