/// n-fold (RFC 3961 §5.1): stretches or folds `input` to `outputLength` octets.
///
/// The input is repeated lcm(|input|, n) / |input| times, each copy rotated right by 13 bits more
/// than the previous one (as one big-endian bit string), and the n-octet blocks of the result are
/// added with end-around carry (ones' complement addition).
package func nFold(_ input: [UInt8], outputLength: Int) -> [UInt8] {
    guard !input.isEmpty, outputLength > 0 else { return [UInt8](repeating: 0, count: max(outputLength, 0)) }
    func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
    let inputBits = input.count * 8
    let total = input.count / gcd(input.count, outputLength) * outputLength

    // Bit `i` (0 = most significant bit of octet 0) of `input` rotated right by `shift` bits.
    func rotatedBit(_ i: Int, shift: Int) -> UInt8 {
        let source = ((i - shift) % inputBits + inputBits) % inputBits
        return (input[source / 8] >> (7 - UInt8(source % 8))) & 1
    }

    var replicated = [UInt8](repeating: 0, count: total)
    for copy in 0..<(total / input.count) {
        for octet in 0..<input.count {
            var value: UInt8 = 0
            for bit in 0..<8 {
                value = value << 1 | rotatedBit(octet * 8 + bit, shift: 13 * copy)
            }
            replicated[copy * input.count + octet] = value
        }
    }

    var sum = [UInt8](repeating: 0, count: outputLength)
    for start in stride(from: 0, to: total, by: outputLength) {
        var carry = 0
        for i in stride(from: outputLength - 1, through: 0, by: -1) {
            let s = Int(sum[i]) + Int(replicated[start + i]) + carry
            sum[i] = UInt8(s & 0xFF)
            carry = s >> 8
        }
        // End-around carry: add it back in at the least significant end.
        while carry != 0 {
            for i in stride(from: outputLength - 1, through: 0, by: -1) {
                let s = Int(sum[i]) + carry
                sum[i] = UInt8(s & 0xFF)
                carry = s >> 8
                if carry == 0 { break }
            }
        }
    }
    return sum
}
