/// The 16-octet header of an RFC 4121 Wrap token (§4.2.6.2):
/// `05 04 | flags | FF | EC (2) | RRC (2) | SND_SEQ (8)`, followed by the (rotated) body.
package struct WrapToken: Sendable, Hashable {
    /// TOK_ID of Wrap tokens.
    package static let tokenID: (UInt8, UInt8) = (0x05, 0x04)
    /// Header length in octets.
    package static let headerLength = 16

    package var flags: TokenFlags
    /// Extra count: filler octets (sealed) or checksum length (not sealed).
    package var extraCount: UInt16
    /// Right rotation count of the body.
    package var rightRotationCount: UInt16
    /// The sender's sequence number.
    package var sequenceNumber: UInt64

    package init(flags: TokenFlags, extraCount: UInt16 = 0, rightRotationCount: UInt16 = 0, sequenceNumber: UInt64) {
        self.flags = flags
        self.extraCount = extraCount
        self.rightRotationCount = rightRotationCount
        self.sequenceNumber = sequenceNumber
    }

    /// Parses the header at the start of `token`; throws `.defectiveToken` if it is not one.
    package init(parsing token: UnsafeRawBufferPointer) throws {
        guard token.count >= Self.headerLength else {
            throw KerberosCryptoError.defectiveToken("Wrap token shorter than its 16-octet header")
        }
        guard token[0] == Self.tokenID.0, token[1] == Self.tokenID.1 else {
            throw KerberosCryptoError.defectiveToken("not a Wrap token (TOK_ID \(tokenIDText(token[0], token[1])))")
        }
        guard token[3] == 0xFF else { throw KerberosCryptoError.defectiveToken("Wrap token filler is not 0xFF") }
        flags = TokenFlags(rawValue: token[2])
        extraCount = UInt16(token[4]) << 8 | UInt16(token[5])
        rightRotationCount = UInt16(token[6]) << 8 | UInt16(token[7])
        sequenceNumber = (8..<16).reduce(0) { $0 << 8 | UInt64(token[$1]) }
    }

    /// Parses the header of `token`.
    package init(parsing token: [UInt8]) throws {
        self = try token.withUnsafeBytes { try WrapToken(parsing: $0) }
    }

    /// Writes the 16 header octets to `target`.
    package func write(to target: UnsafeMutableRawPointer) {
        let p = target.assumingMemoryBound(to: UInt8.self)
        p[0] = Self.tokenID.0
        p[1] = Self.tokenID.1
        p[2] = flags.rawValue
        p[3] = 0xFF
        p[4] = UInt8(extraCount >> 8)
        p[5] = UInt8(extraCount & 0xFF)
        p[6] = UInt8(rightRotationCount >> 8)
        p[7] = UInt8(rightRotationCount & 0xFF)
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

/// "05 04" for a two-octet TOK_ID.
func tokenIDText(_ a: UInt8, _ b: UInt8) -> String {
    func h(_ v: UInt8) -> String { let s = String(v, radix: 16); return s.count == 1 ? "0" + s : s }
    return "\(h(a)) \(h(b))"
}
