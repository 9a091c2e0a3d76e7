import Foundation

/// Writes LDIF (RFC 2849): `version: 1`, base64 where the RFC requires it, lines folded at 76 columns.
public enum LDIFWriter {
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
