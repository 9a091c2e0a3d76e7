import Synchronization

/// RFC 4121 per-message protection for one established Kerberos GSS context (CFX tokens):
/// Wrap (sealed or not) and MIC tokens, byte-for-byte as MIT krb5 makes and checks them, computed
/// with OpenSSL. Holds the keys, role, acceptor-subkey flag, send sequence number and the receive
/// window (MIT `g_seqstate` semantics).
///
/// Thread-safe: the sequence state is behind a `Mutex`; the cryptography runs outside the lock.
package final class ProtectionContext: @unchecked Sendable {
    /// Which side of the context this is.
    package enum Role: Sendable, Hashable {
        case initiator, acceptor
    }

    /// What unwrapping or verifying learned besides the data.
    package struct TokenInfo: Sendable, Hashable {
        /// Whether the data was encrypted (sealed Wrap token).
        package let confidential: Bool
        /// The sender's sequence number.
        package let sequenceNumber: UInt64
        /// Where the number fell in the receive window (`.inSequence`, `.gap` or `.unsequenced`).
        package let sequence: SequenceWindow.Status
    }

    /// An unwrapped message.
    package struct Unwrapped: Sendable, Hashable {
        package let data: [UInt8]
        package let info: TokenInfo
    }

    package let role: Role
    /// Whether the acceptor asserted a subkey (tokens then carry `AcceptorSubkey` and use it).
    package let hasAcceptorSubkey: Bool
    /// When true, `.gap`/`.unsequenced` tokens are rejected instead of reported (SSPI behaviour);
    /// duplicates and too-old tokens are always rejected.
    package let rejectOutOfSequence: Bool
    /// RRC used for tokens this side makes (MIT uses 0 unless DCE style; any RRC is accepted).
    package let rightRotationCount: UInt16

    private let sendSeal: DerivedKeys
    private let sendSign: DerivedKeys
    private let peerSeal: DerivedKeys
    private let peerSign: DerivedKeys
    private let peerSealSubkey: DerivedKeys?
    private let peerSignSubkey: DerivedKeys?
    /// The per-context sequence state: the next number to send and the receive window.
    private struct Sequences {
        var nextSend: UInt64
        var window: SequenceWindow
    }

    private let sequences: Mutex<Sequences>

    /// - Parameters:
    ///   - contextKey: the initiator subkey (or session key) of the context.
    ///   - acceptorSubkey: the acceptor's subkey, if it asserted one.
    ///   - sendSequenceNumber: the next sequence number this side sends.
    ///   - receiveSequenceNumber: the first sequence number expected from the peer.
    package init(role: Role, contextKey: KerberosKey, acceptorSubkey: KerberosKey? = nil,
                sendSequenceNumber: UInt64, receiveSequenceNumber: UInt64,
                replayDetection: Bool = true, sequenceDetection: Bool = true,
                rejectOutOfSequence: Bool = false, rightRotationCount: UInt16 = 0) throws {
        self.role = role
        hasAcceptorSubkey = acceptorSubkey != nil
        self.rejectOutOfSequence = rejectOutOfSequence
        self.rightRotationCount = rightRotationCount
        let (mySeal, mySign, theirSeal, theirSign): (KeyUsage, KeyUsage, KeyUsage, KeyUsage) = role == .initiator
            ? (.initiatorSeal, .initiatorSign, .acceptorSeal, .acceptorSign)
            : (.acceptorSeal, .acceptorSign, .initiatorSeal, .initiatorSign)
        let sendKey = acceptorSubkey ?? contextKey
        sendSeal = try DerivedKeys(base: sendKey, usage: mySeal)
        sendSign = try DerivedKeys(base: sendKey, usage: mySign)
        peerSeal = try DerivedKeys(base: contextKey, usage: theirSeal)
        peerSign = try DerivedKeys(base: contextKey, usage: theirSign)
        peerSealSubkey = try acceptorSubkey.map { try DerivedKeys(base: $0, usage: theirSeal) }
        peerSignSubkey = try acceptorSubkey.map { try DerivedKeys(base: $0, usage: theirSign) }
        sequences = Mutex(Sequences(
            nextSend: sendSequenceNumber,
            window: SequenceWindow(initialSequenceNumber: receiveSequenceNumber, replayDetection: replayDetection,
                                   sequenceDetection: sequenceDetection)))
    }

    private var ownFlags: TokenFlags {
        var flags: TokenFlags = role == .acceptor ? .sentByAcceptor : []
        if hasAcceptorSubkey { flags.insert(.acceptorSubkey) }
        return flags
    }

    private func takeSequenceNumber() -> UInt64 {
        sequences.withLock { state in
            let n = state.nextSend
            state.nextSend &+= 1
            return n
        }
    }

    /// The next sequence number this side will send.
    package var sendSequenceNumber: UInt64 {
        sequences.withLock { $0.nextSend }
    }

    // MARK: - Wrap

    /// Length of the Wrap token for a message of `messageLength` octets.
    package func wrappedLength(messageLength: Int, confidential: Bool = true) -> Int {
        confidential
            ? WrapToken.headerLength + DerivedKeys.confounderLength + messageLength + WrapToken.headerLength
                + sendSeal.enctype.macLength
            : WrapToken.headerLength + messageLength + sendSeal.enctype.macLength
    }

    /// Wraps `message` into `output` (at least `wrappedLength` octets) without intermediate copies;
    /// returns the token length.
    @discardableResult
    package func wrap(_ message: UnsafeRawBufferPointer, confidential: Bool = true,
                     into output: UnsafeMutableRawBufferPointer) throws -> Int {
        let length = wrappedLength(messageLength: message.count, confidential: confidential)
        guard output.count >= length, let out = output.baseAddress else {
            throw KerberosCryptoError.bufferTooSmall(needed: length)
        }
        let macLength = sendSeal.enctype.macLength
        let sequenceNumber = takeSequenceNumber()
        var header = WrapToken(flags: ownFlags, sequenceNumber: sequenceNumber)
        if confidential {
            header.flags.insert(.sealed)
            header.write(to: out)
            // Encrypted: data | filler (EC = 0) | header with RRC = 0.
            try withUnsafeTemporaryAllocation(byteCount: 16, alignment: 16) { copy in
                header.write(to: copy.baseAddress!)
                try sendSeal.encrypt(confounder: nil, pieces: [message, UnsafeRawBufferPointer(copy)],
                                     into: UnsafeMutableRawBufferPointer(rebasing: output[16..<length]))
            }
        } else {
            // Checksum over data | header with EC = RRC = 0; then EC = checksum length.
            header.write(to: out)
            if let base = message.baseAddress, message.count > 0 {
                (out + 16).copyMemory(from: base, byteCount: message.count)
            }
            try sendSeal.checksum([message, UnsafeRawBufferPointer(start: out, count: 16)],
                                  into: out + 16 + message.count)
            header.extraCount = UInt16(macLength)
            header.write(to: out)
        }
        if rightRotationCount != 0 {
            let body = UnsafeMutableRawBufferPointer(rebasing: output[16..<length])
            rotateRight(body, by: Int(rightRotationCount) % body.count)
            header.rightRotationCount = rightRotationCount
            header.write(to: out)
        }
        return length
    }

    /// Wraps `data` where it lies (the IOV form, like `gss_wrap_iov` with HEADER | DATA | TRAILER):
    /// sealed, the data is encrypted in place; either way the token on the wire is
    /// `header + data + trailer`, an ordinary Wrap token with RRC = 0 that `unwrap` accepts.
    package func wrapInPlace(_ data: UnsafeMutableRawBufferPointer, confidential: Bool = true) throws
        -> (header: [UInt8], trailer: [UInt8]) {
        let macLength = sendSeal.enctype.macLength
        var header = WrapToken(flags: ownFlags, sequenceNumber: takeSequenceNumber())
        let message = UnsafeRawBufferPointer(data)
        if confidential {
            header.flags.insert(.sealed)
            var head = [UInt8](repeating: 0, count: 16 + DerivedKeys.confounderLength)
            var trailer = [UInt8](repeating: 0, count: 16 + macLength)
            try head.withUnsafeMutableBytes { h in
                try trailer.withUnsafeMutableBytes { t in
                    header.write(to: h.baseAddress!)
                    let copy = UnsafeRawBufferPointer(start: h.baseAddress!, count: 16)  // header, RRC = EC = 0
                    try sendSeal.encrypt(confounder: nil, pieces: [message, copy],
                                         into: [UnsafeMutableRawBufferPointer(rebasing: h[16...]), data,
                                                UnsafeMutableRawBufferPointer(rebasing: t[0..<16])],
                                         mac: t.baseAddress! + 16)
                }
            }
            return (head, trailer)
        }
        var head = header.bytes  // EC = RRC = 0 for the checksum
        var trailer = [UInt8](repeating: 0, count: macLength)
        try head.withUnsafeBytes { h in
            try trailer.withUnsafeMutableBytes { t in try sendSeal.checksum([message, h], into: t.baseAddress!) }
        }
        header.extraCount = UInt16(macLength)
        head = header.bytes
        return (head, trailer)
    }

    /// Wraps `message` (one allocation: the token).
    package func wrap(_ message: [UInt8], confidential: Bool = true) throws -> [UInt8] {
        let length = wrappedLength(messageLength: message.count, confidential: confidential)
        var failure: (any Error)?
        let token = [UInt8](unsafeUninitializedCapacity: length) { buffer, count in
            do {
                _ = try message.withUnsafeBytes { m in
                    try wrap(m, confidential: confidential, into: UnsafeMutableRawBufferPointer(buffer))
                }
                count = length
            } catch {
                failure = error
                count = 0
            }
        }
        if let failure { throw failure }
        return token
    }

    // MARK: - Unwrap

    /// Header checks common to Wrap tokens; returns the header and the keys for it.
    private func validateWrapHeader(_ token: UnsafeRawBufferPointer) throws -> (WrapToken, DerivedKeys) {
        let header = try WrapToken(parsing: token)
        try checkDirection(header.flags)
        let keys = header.flags.contains(.acceptorSubkey) ? (peerSealSubkey ?? peerSeal) : peerSeal
        return (header, keys)
    }

    private func checkDirection(_ flags: TokenFlags) throws {
        guard flags.contains(.sentByAcceptor) == (role == .initiator) else {
            throw KerberosCryptoError.badSignature("token sent in the wrong direction (SentByAcceptor flag)")
        }
    }

    /// The decrypted copy of the header must match the outer one (TOK_ID, flags, filler, EC,
    /// SND_SEQ), as MIT 1.20.1 in Debian 12 checks it (EC included since the CVE-2024-37370 fix).
    private func checkHeaderCopy(_ copy: UnsafeRawBufferPointer, _ outer: UnsafeRawBufferPointer) throws {
        guard copy[0] == 0x05, copy[1] == 0x04, copy[2] == outer[2], copy[3] == outer[3],
              copy[4] == outer[4], copy[5] == outer[5],
              (8..<16).allSatisfy({ copy[$0] == outer[$0] }) else {
            throw KerberosCryptoError.defectiveToken("encrypted header copy does not match the token header")
        }
    }

    private func record(_ sequenceNumber: UInt64, confidential: Bool) throws -> TokenInfo {
        let status = sequences.withLock { $0.window.check(sequenceNumber) }
        let fatal = status == .duplicate || status == .old
            || (rejectOutOfSequence && (status == .gap || status == .unsequenced))
        if fatal, let error = status.error(sequenceNumber: sequenceNumber) { throw error }
        return TokenInfo(confidential: confidential, sequenceNumber: sequenceNumber, sequence: status)
    }

    /// Unwraps a token held in `buffer`, in place: decrypts where it lies and returns the range of
    /// `buffer` holding the message. No allocation proportional to the message.
    package func unwrap(inPlace buffer: UnsafeMutableRawBufferPointer) throws -> (range: Range<Int>, info: TokenInfo) {
        let token = UnsafeRawBufferPointer(buffer)
        let (header, keys) = try validateWrapHeader(token)
        let body = UnsafeMutableRawBufferPointer(rebasing: buffer[16...])
        if body.count > 0 { rotateLeft(body, by: Int(header.rightRotationCount) % body.count) }
        let macLength = keys.enctype.macLength
        let ec = Int(header.extraCount)
        if header.flags.contains(.sealed) {
            // MIT's order: a body too short to decrypt fails decryption (BAD_SIG); a plaintext too
            // short for the header copy and EC is DEFECTIVE_TOKEN, found only after decryption.
            guard body.count >= DerivedKeys.confounderLength + macLength else {
                throw KerberosCryptoError.badSignature("sealed Wrap token shorter than confounder and checksum")
            }
            let plainLength = body.count - macLength
            try keys.decrypt(UnsafeRawBufferPointer(body),
                             into: [UnsafeMutableRawBufferPointer(rebasing: body[0..<plainLength])])
            guard plainLength >= 32 + ec else {
                body.initializeMemory(as: UInt8.self, repeating: 0)
                throw KerberosCryptoError.defectiveToken("EC \(ec) exceeds the sealed plaintext")
            }
            try checkHeaderCopy(UnsafeRawBufferPointer(rebasing: body[(plainLength - 16)..<plainLength]), token)
            let info = try record(header.sequenceNumber, confidential: true)
            return (32..<(16 + plainLength - 16 - ec), info)
        }
        guard body.count >= ec else { throw KerberosCryptoError.defectiveToken("Wrap token too short") }
        guard ec == macLength else {
            throw KerberosCryptoError.badSignature("EC \(ec) is not the checksum length \(macLength)")
        }
        let dataLength = body.count - ec
        try verifyWrapChecksum(keys: keys, header: header, data: UnsafeRawBufferPointer(rebasing: body[0..<dataLength]),
                               checksum: UnsafeRawBufferPointer(rebasing: body[dataLength...]))
        let info = try record(header.sequenceNumber, confidential: false)
        return (16..<(16 + dataLength), info)
    }

    private func verifyWrapChecksum(keys: DerivedKeys, header: WrapToken, data: UnsafeRawBufferPointer,
                                    checksum: UnsafeRawBufferPointer) throws {
        var zeroed = header
        zeroed.extraCount = 0
        zeroed.rightRotationCount = 0
        let headerBytes = zeroed.bytes
        var expected = [UInt8](repeating: 0, count: keys.enctype.macLength)
        try headerBytes.withUnsafeBytes { h in
            try expected.withUnsafeMutableBytes { e in try keys.checksum([data, h], into: e.baseAddress!) }
        }
        let ok = expected.withUnsafeBytes { LibCrypto.constantTimeEqual($0, checksum) }
        guard ok else { throw KerberosCryptoError.badSignature("Wrap token checksum does not match") }
    }

    /// Unwraps `token`, returning the message (one allocation: the message).
    package func unwrap(_ token: [UInt8]) throws -> Unwrapped {
        if token.count > 16, (Int(token[6]) << 8 | Int(token[7])) % (token.count - 16) != 0 {
            // Rotated body (e.g. DCE style): work on a copy.
            var copy = token
            let (range, info) = try copy.withUnsafeMutableBytes { try unwrap(inPlace: $0) }
            return Unwrapped(data: Array(copy[range]), info: info)
        }
        return try token.withUnsafeBytes { t in
            let (header, keys) = try validateWrapHeader(t)
            let body = UnsafeRawBufferPointer(rebasing: t[16...])
            let macLength = keys.enctype.macLength
            let ec = Int(header.extraCount)
            if header.flags.contains(.sealed) {
                guard body.count >= 32 + macLength + ec else {
                    // Too short for its EC or even for decryption: the in-place path reports it as MIT does.
                    var copy = Array(t)
                    let (range, info) = try copy.withUnsafeMutableBytes { try unwrap(inPlace: $0) }
                    return Unwrapped(data: Array(copy[range]), info: info)
                }
                let dataLength = body.count - macLength - 32 - ec
                var failure: (any Error)?
                var trailer = [UInt8](repeating: 0, count: 16 + ec)
                var confounder = [UInt8](repeating: 0, count: 16)
                let data = [UInt8](unsafeUninitializedCapacity: dataLength) { buffer, count in
                    do {
                        try confounder.withUnsafeMutableBytes { c in
                            try trailer.withUnsafeMutableBytes { tr in
                                try keys.decrypt(body, into: [c, UnsafeMutableRawBufferPointer(buffer), tr])
                                try checkHeaderCopy(UnsafeRawBufferPointer(rebasing: tr[ec...]), t)
                            }
                        }
                        count = dataLength
                    } catch {
                        failure = error
                        count = 0
                    }
                }
                if let failure { throw failure }
                return Unwrapped(data: data, info: try record(header.sequenceNumber, confidential: true))
            }
            guard body.count >= ec else { throw KerberosCryptoError.defectiveToken("Wrap token too short") }
            guard ec == macLength else {
                throw KerberosCryptoError.badSignature("EC \(ec) is not the checksum length \(macLength)")
            }
            let dataLength = body.count - ec
            let data = UnsafeRawBufferPointer(rebasing: body[0..<dataLength])
            try verifyWrapChecksum(keys: keys, header: header, data: data,
                                   checksum: UnsafeRawBufferPointer(rebasing: body[dataLength...]))
            return Unwrapped(data: Array(data), info: try record(header.sequenceNumber, confidential: false))
        }
    }

    // MARK: - MIC

    /// A MIC token over `message`.
    package func getMIC(_ message: UnsafeRawBufferPointer) throws -> [UInt8] {
        let header = MICToken(flags: ownFlags, sequenceNumber: takeSequenceNumber())
        let macLength = sendSign.enctype.macLength
        var token = header.bytes + [UInt8](repeating: 0, count: macLength)
        try token.withUnsafeMutableBytes { t in
            try sendSign.checksum([message, UnsafeRawBufferPointer(rebasing: t[0..<16])], into: t.baseAddress! + 16)
        }
        return token
    }

    /// A MIC token over `message`.
    package func getMIC(_ message: [UInt8]) throws -> [UInt8] {
        try message.withUnsafeBytes { try getMIC($0) }
    }

    /// Verifies a MIC `token` over `message`.
    @discardableResult
    package func verifyMIC(_ message: UnsafeRawBufferPointer, token: [UInt8]) throws -> TokenInfo {
        try token.withUnsafeBytes { t in
            let header = try MICToken(parsing: t)
            try checkDirection(header.flags)
            let keys = header.flags.contains(.acceptorSubkey) ? (peerSignSubkey ?? peerSign) : peerSign
            var expected = [UInt8](repeating: 0, count: keys.enctype.macLength)
            try expected.withUnsafeMutableBytes { e in
                try keys.checksum([message, UnsafeRawBufferPointer(rebasing: t[0..<16])], into: e.baseAddress!)
            }
            let ok = expected.withUnsafeBytes { LibCrypto.constantTimeEqual($0, UnsafeRawBufferPointer(rebasing: t[16...])) }
            guard ok else { throw KerberosCryptoError.badSignature("MIC checksum does not match") }
            return try record(header.sequenceNumber, confidential: false)
        }
    }

    /// Verifies a MIC `token` over `message`.
    @discardableResult
    package func verifyMIC(_ message: [UInt8], token: [UInt8]) throws -> TokenInfo {
        try message.withUnsafeBytes { try verifyMIC($0, token: token) }
    }
}

/// Rotates `buffer` right by `count` octets (the last `count` octets move to the front).
func rotateRight(_ buffer: UnsafeMutableRawBufferPointer, by count: Int) {
    guard count > 0, count < buffer.count, let base = buffer.baseAddress else { return }
    let saved = [UInt8](UnsafeRawBufferPointer(rebasing: buffer[(buffer.count - count)...]))
    (base + count).copyMemory(from: base, byteCount: buffer.count - count)  // memmove semantics
    saved.withUnsafeBytes { base.copyMemory(from: $0.baseAddress!, byteCount: count) }
}

/// Rotates `buffer` left by `count` octets (the first `count` octets move to the end).
func rotateLeft(_ buffer: UnsafeMutableRawBufferPointer, by count: Int) {
    guard count > 0, count < buffer.count, let base = buffer.baseAddress else { return }
    let saved = [UInt8](UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
    base.copyMemory(from: base + count, byteCount: buffer.count - count)
    saved.withUnsafeBytes { (base + buffer.count - count).copyMemory(from: $0.baseAddress!, byteCount: count) }
}
