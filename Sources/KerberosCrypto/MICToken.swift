/// The 16-octet header of an RFC 4121 MIC token (§4.2.6.1):
/// `04 04 | flags | FF FF FF FF FF | SND_SEQ (8)`, followed by the checksum.
package struct MICToken: Sendable, Hashable {
    /// TOK_ID of MIC tokens.
    package static let tokenID: (UInt8, UInt8) = (0x04, 0x04)
    /// Header length in octets.
    package static let headerLength = 16

    package var flags: TokenFlags
    package var sequenceNumber: UInt64

    package init(flags: TokenFlags, sequenceNumber: UInt64) {
        self.flags = flags
        self.sequenceNumber = sequenceNumber
    }

    /// Parses the header at the start of `token`; throws `.defectiveToken` if it is not one.
    package init(parsing token: UnsafeRawBufferPointer) throws {
        guard token.count >= Self.headerLength else {
            throw KerberosCryptoError.defectiveToken("MIC token shorter than its 16-octet header")
        }
        guard token[0] == Self.tokenID.0, token[1] == Self.tokenID.1 else {
            throw KerberosCryptoError.defectiveToken("not a MIC token (TOK_ID \(tokenIDText(token[0], token[1])))")
        }
        guard (3..<8).allSatisfy({ token[$0] == 0xFF }) else {
            throw KerberosCryptoError.defectiveToken("MIC token filler is not FF FF FF FF FF")
        }
        flags = TokenFlags(rawValue: token[2])
        sequenceNumber = (8..<16).reduce(0) { $0 << 8 | UInt64(token[$1]) }
    }

    /// Writes the 16 header octets to `target`.
    package func write(to target: UnsafeMutableRawPointer) {
        let p = target.assumingMemoryBound(to: UInt8.self)
        p[0] = Self.tokenID.0
        p[1] = Self.tokenID.1
        p[2] = flags.rawValue
        for i in 3..<8 { p[i] = 0xFF }
        for i in 0..<8 { p[8 + i] = UInt8(sequenceNumber >> (56 - 8 * UInt64(i)) & 0xFF) }
    }

    /// The 16 header octets.
    package var bytes: [UInt8] {
        [UInt8](unsafeUninitializedCapacity: Self.headerLength) { buffer, count in
            write(to: UnsafeMutableRawPointer(buffer.baseAddress!))
            count = Self.headerLength
        }
    }
}
