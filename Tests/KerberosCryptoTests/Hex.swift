/// Parses hex as the RFCs print it (spaces and newlines allowed); a malformed vector yields [].
func hex(_ text: String) -> [UInt8] {
    let digits = text.filter { !$0.isWhitespace }
    guard digits.count % 2 == 0 else { return [] }
    var out: [UInt8] = []
    var index = digits.startIndex
    while index < digits.endIndex {
        let next = digits.index(index, offsetBy: 2)
        guard let byte = UInt8(digits[index..<next], radix: 16) else { return [] }
        out.append(byte)
        index = next
    }
    return out
}

func hexString(_ bytes: [UInt8]) -> String {
    bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
}
