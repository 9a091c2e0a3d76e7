import Foundation

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
