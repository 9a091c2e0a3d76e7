import KerberosCrypto
import Testing
import TestSupport

/// Round trips, tampering, replay and ordering for Wrap and MIC tokens between two contexts.
@Suite struct ProtectionContextTests {
    struct Pair {
        let initiator: ProtectionContext
        let acceptor: ProtectionContext
    }

    static func pair(_ enctype: Enctype, subkey: Bool, seed: UInt64, rrc: UInt16 = 0,
                     rejectOutOfSequence: Bool = false, sequenceDetection: Bool = true) throws -> Pair {
        var rng = SeededGenerator(seed: seed)
        let contextKey = try KerberosKey(enctype: enctype, bytes: rng.bytes(enctype.keyLength))
        let acceptorSubkey = subkey ? try KerberosKey(enctype: enctype, bytes: rng.bytes(enctype.keyLength)) : nil
        let initiatorSeq = rng.next() & 0xFFFF_FFFF, acceptorSeq = rng.next() & 0xFFFF_FFFF
        return Pair(
            initiator: try ProtectionContext(role: .initiator, contextKey: contextKey, acceptorSubkey: acceptorSubkey,
                                             sendSequenceNumber: initiatorSeq, receiveSequenceNumber: acceptorSeq,
                                             sequenceDetection: sequenceDetection,
                                             rejectOutOfSequence: rejectOutOfSequence, rightRotationCount: rrc),
            acceptor: try ProtectionContext(role: .acceptor, contextKey: contextKey, acceptorSubkey: acceptorSubkey,
                                            sendSequenceNumber: acceptorSeq, receiveSequenceNumber: initiatorSeq,
                                            sequenceDetection: sequenceDetection,
                                            rejectOutOfSequence: rejectOutOfSequence, rightRotationCount: rrc))
    }

    static let fixedSizes = [0, 1, 15, 16, 17, 31, 32, 33, 47, 48, 49, 64, 1000, 65_536]

    @Test(arguments: Enctype.allCases, [false, true])
    func wrapRoundTripOverRandomSizes(enctype: Enctype, subkey: Bool) throws {
        var rng = SeededGenerator(seed: 0x5EED_0000 + UInt64(enctype.rawValue) * 2 + (subkey ? 1 : 0))
        let p = try Self.pair(enctype, subkey: subkey, seed: rng.next())
        var sizes = Self.fixedSizes
        for _ in 0..<12 { sizes.append(Int(rng.next() % 70_000)) }
        sizes.append(1 << 20)
        sizes.append(3 * (1 << 20) + Int(rng.next() % 4096))
        for (i, size) in sizes.enumerated() {
            let message = rng.bytes(size)
            let confidential = i % 3 != 2
            let (sender, receiver) = i % 2 == 0 ? (p.initiator, p.acceptor) : (p.acceptor, p.initiator)
            let token = try sender.wrap(message, confidential: confidential)
            #expect(token.count == sender.wrappedLength(messageLength: size, confidential: confidential))
            #expect(token[0] == 0x05 && token[1] == 0x04 && token[3] == 0xFF)
            #expect(token[2] & 0x01 == (sender === p.acceptor ? 1 : 0), "SentByAcceptor")
            #expect(token[2] & 0x02 == (confidential ? 2 : 0), "Sealed")
            #expect(token[2] & 0x04 == (subkey ? 4 : 0), "AcceptorSubkey")
            if confidential && size >= 16 {
                #expect(Array(token[32..<48]) != Array(message[0..<16]), "sealed data is not in the clear")
            }
            let unwrapped = try receiver.unwrap(token)
            #expect(unwrapped.data == message, "size \(size)")
            #expect(unwrapped.info.confidential == confidential)
            #expect(unwrapped.info.sequence == .inSequence)

            // The in-place path gives the same message from a second token.
            var second = try sender.wrap(message, confidential: confidential)
            let (range, info) = try second.withUnsafeMutableBytes { try receiver.unwrap(inPlace: $0) }
            #expect(Array(second[range]) == message)
            #expect(info.sequence == .inSequence)
        }
    }

    @Test(arguments: Enctype.allCases)
    func rotatedTokensRoundTrip(enctype: Enctype) throws {
        var rng = SeededGenerator(seed: 0xA5A5 + UInt64(enctype.rawValue))
        let p = try Self.pair(enctype, subkey: true, seed: rng.next(), rrc: 28)
        for size in [0, 5, 40, 4097] {
            let message = rng.bytes(size)
            for confidential in [true, false] {
                let token = try p.acceptor.wrap(message, confidential: confidential)
                #expect(token[6] == 0 && token[7] == 28)
                #expect(try p.initiator.unwrap(token).data == message)
            }
        }
    }

    @Test(arguments: Enctype.allCases)
    func micRoundTripAndTampering(enctype: Enctype) throws {
        var rng = SeededGenerator(seed: 0x111C + UInt64(enctype.rawValue))
        let p = try Self.pair(enctype, subkey: false, seed: rng.next())
        for size in [0, 1, 100, 70_000] {
            let message = rng.bytes(size)
            let mic = try p.initiator.getMIC(message)
            #expect(mic.count == 16 + enctype.macLength)
            #expect(Array(mic[0..<8]) == [0x04, 0x04, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
            #expect(try p.acceptor.verifyMIC(message, token: mic).sequence == .inSequence)

            var altered = message + [0]
            if size > 0 { altered = message; altered[Int(rng.next() % UInt64(size))] ^= 0x40 }
            let next = try p.initiator.getMIC(message)
            #expect(throws: KerberosCryptoError.self) { try p.acceptor.verifyMIC(altered, token: next) }
            // The failed check consumed nothing: the genuine message still verifies in sequence.
            #expect(try p.acceptor.verifyMIC(message, token: next).sequence == .inSequence)
        }
        // A replayed MIC is a duplicate.
        let m = rng.bytes(10)
        let mic = try p.acceptor.getMIC(m)
        try p.initiator.verifyMIC(m, token: mic)
        #expect(throws: KerberosCryptoError.duplicateToken(sequenceNumber: UInt64(mic[8..<16].reduce(0) { $0 << 8 | UInt64($1) }))) {
            try p.initiator.verifyMIC(m, token: mic)
        }
    }

    @Test(arguments: Enctype.allCases)
    func tamperedAndTruncatedTokensAreRejected(enctype: Enctype) throws {
        var rng = SeededGenerator(seed: 0x7A3 + UInt64(enctype.rawValue))
        let p = try Self.pair(enctype, subkey: false, seed: rng.next())
        for confidential in [true, false] {
            let message = rng.bytes(300)
            // Flipping any bit after the header breaks the integrity check.
            for _ in 0..<20 {
                var token = try p.initiator.wrap(message, confidential: confidential)
                let index = 16 + Int(rng.next() % UInt64(token.count - 16))
                token[index] ^= UInt8(1) << UInt8(rng.next() % 8)
                #expect(throws: KerberosCryptoError.self) { try p.acceptor.unwrap(token) }
                do { _ = try p.acceptor.unwrap(token) } catch let error as KerberosCryptoError {
                    #expect(error.gssMajorStatus == 6 << 16 || error.gssMajorStatus == 9 << 16, "\(error)")
                }
            }
            var token = try p.initiator.wrap(message, confidential: confidential)
            token[token.count - 1] ^= 0x01
            #expect(throws: KerberosCryptoError.self) { try p.acceptor.unwrap(token) }
            do { _ = try p.acceptor.unwrap(token) } catch let error as KerberosCryptoError {
                #expect(error.gssMajorStatus == 6 << 16)
                #expect(error.windowsStatus.code == 0x8009_030F)
            }
            // A wrong TOK_ID or filler is a defective token.
            token = try p.initiator.wrap(message, confidential: confidential)
            token[1] = 0x05
            do { _ = try p.acceptor.unwrap(token); Issue.record("accepted a bad TOK_ID") } catch let error as KerberosCryptoError {
                #expect(error.gssMajorStatus == 9 << 16)
                #expect(error.windowsStatus.code == 0x8009_0308)
            }
            // The sequence number is covered by the checksum.
            token = try p.initiator.wrap(message, confidential: confidential)
            token[15] ^= 0x01
            #expect(throws: KerberosCryptoError.self) { try p.acceptor.unwrap(token) }
            // Truncation anywhere is rejected.
            token = try p.initiator.wrap(message, confidential: confidential)
            for cut in [0, 1, 15, 16, 17, 40, token.count - 1] {
                #expect(throws: KerberosCryptoError.self) { try p.acceptor.unwrap(Array(token[0..<cut])) }
            }
            // A token sent by the initiator is not accepted by the initiator.
            token = try p.initiator.wrap(message, confidential: confidential)
            #expect(throws: KerberosCryptoError.self) { try p.initiator.unwrap(token) }
        }
    }

    /// The IOV form: the data is encrypted where it lies; header + data + trailer is an ordinary
    /// Wrap token, equal to `wrap`'s layout, which the peer unwraps.
    @Test(arguments: Enctype.allCases, [false, true])
    func wrapInPlaceRoundTrip(enctype: Enctype, confidential: Bool) throws {
        var rng = SeededGenerator(seed: 0x10F0_0000 + UInt64(enctype.rawValue) * 2 + (confidential ? 1 : 0))
        let p = try Self.pair(enctype, subkey: true, seed: rng.next())
        for size in Self.fixedSizes + [100_003, 1 << 20] {
            let message = rng.bytes(size)
            var data = message
            let parts = try data.withUnsafeMutableBytes { try p.initiator.wrapInPlace($0, confidential: confidential) }
            if confidential && size >= 16 { #expect(data != message, "encrypted in place (size \(size))") }
            #expect(parts.header.count == (confidential ? 32 : 16))
            #expect(parts.trailer.count == (confidential ? 16 : 0) + enctype.macLength)
            let token = parts.header + data + parts.trailer
            #expect(token.count == p.initiator.wrappedLength(messageLength: size, confidential: confidential))
            let unwrapped = try p.acceptor.unwrap(token)
            #expect(unwrapped.data == message, "size \(size)")
            #expect(unwrapped.info.confidential == confidential)
        }
    }

    @Test func replayedAndReorderedTokens() throws {
        let p = try Self.pair(.aes256CtsHmacSha384_192, subkey: true, seed: 42)
        let t1 = try p.initiator.wrap([1])
        let t2 = try p.initiator.wrap([2])
        let t3 = try p.initiator.wrap([3])
        #expect(try p.acceptor.unwrap(t1).info.sequence == .inSequence)
        #expect(try p.acceptor.unwrap(t3).info.sequence == .gap)
        let late = try p.acceptor.unwrap(t2)
        #expect(late.data == [2] && late.info.sequence == .unsequenced)
        let sequenceNumber = try WrapToken(parsing: t1).sequenceNumber
        #expect(throws: KerberosCryptoError.duplicateToken(sequenceNumber: sequenceNumber)) { try p.acceptor.unwrap(t1) }
        do { _ = try p.acceptor.unwrap(t3) } catch let error as KerberosCryptoError {
            #expect(error.gssMajorStatus == 1 << 1)
            #expect(error.windowsStatus.code == 0x8009_0310)
        }
    }

    @Test func strictContextsRejectGapsAndReordering() throws {
        let p = try Self.pair(.aes128CtsHmacSha1_96, subkey: false, seed: 7, rejectOutOfSequence: true)
        let t1 = try p.acceptor.wrap([1])
        let t2 = try p.acceptor.wrap([2])
        let s2 = try WrapToken(parsing: t2).sequenceNumber
        #expect(throws: KerberosCryptoError.gapToken(sequenceNumber: s2)) { try p.initiator.unwrap(t2) }
        #expect(throws: KerberosCryptoError.unseqToken(sequenceNumber: s2 - 1)) { try p.initiator.unwrap(t1) }
    }

    @Test func tamperedTokensDoNotAdvanceTheWindow() throws {
        let p = try Self.pair(.aes128CtsHmacSha256_128, subkey: false, seed: 9)
        let token = try p.initiator.wrap([9, 9, 9])
        var forged = token
        forged[20] ^= 0xFF
        #expect(throws: KerberosCryptoError.self) { try p.acceptor.unwrap(forged) }
        #expect(try p.acceptor.unwrap(token).info.sequence == .inSequence)
    }

    @Test func concurrentWrapsGetDistinctSequenceNumbers() async throws {
        let p = try Self.pair(.aes256CtsHmacSha1_96, subkey: true, seed: 11)
        let sender = p.initiator
        let tokens = try await withThrowingTaskGroup(of: [[UInt8]].self) { group in
            for task in 0..<4 {
                group.addTask {
                    try (0..<50).map { i in try sender.wrap([UInt8(task), UInt8(i)], confidential: i % 2 == 0) }
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        let numbers = try Set(tokens.map { try WrapToken(parsing: $0).sequenceNumber })
        #expect(numbers.count == 200)
        var received = Set<[UInt8]>()
        for token in tokens {
            let unwrapped = try p.acceptor.unwrap(token)
            #expect(unwrapped.info.sequence != .duplicate)
            received.insert(unwrapped.data)
        }
        #expect(received.count == 200)
    }

    @Test func keysAreNeverPrinted() throws {
        let key = try KerberosKey(enctype: .aes128CtsHmacSha1_96, bytes: [UInt8](repeating: 0xAB, count: 16))
        #expect(!key.description.lowercased().contains("ab"))
        #expect(!String(reflecting: key).lowercased().contains("abab"))
        #expect(throws: KerberosCryptoError.self) { try KerberosKey(enctype: .aes256CtsHmacSha1_96, bytes: [1, 2, 3]) }
    }
}

/// MIT `g_seqstate` semantics of the receive window.
@Suite struct SequenceWindowTests {
    @Test func windowWithReplayAndSequenceDetection() {
        var w = SequenceWindow(initialSequenceNumber: 100)
        #expect(w.check(100) == .inSequence)
        #expect(w.check(101) == .inSequence)
        #expect(w.check(101) == .duplicate)
        #expect(w.check(105) == .gap)
        #expect(w.check(103) == .unsequenced)
        #expect(w.check(103) == .duplicate)
        #expect(w.check(106) == .inSequence)
        #expect(w.check(106 + 70) == .gap)
        #expect(w.check(106) == .unsequenced, "beyond the 64-entry window: cannot tell, reported unsequenced")
    }

    @Test func windowWithReplayDetectionOnly() {
        var w = SequenceWindow(initialSequenceNumber: UInt64.max - 1, replayDetection: true, sequenceDetection: false)
        #expect(w.check(UInt64.max - 1) == .inSequence)
        #expect(w.check(1) == .inSequence, "wraps around 2^64; gaps are fine without sequence detection")
        #expect(w.check(UInt64.max) == .inSequence, "late but unseen")
        #expect(w.check(UInt64.max) == .duplicate)
        #expect(w.check(200) == .inSequence)
        #expect(w.check(2) == .old)
    }

    @Test func windowWithoutDetection() {
        var w = SequenceWindow(initialSequenceNumber: 5, replayDetection: false, sequenceDetection: false)
        #expect(w.check(5) == .inSequence)
        #expect(w.check(5) == .inSequence)
        #expect(w.check(1) == .inSequence)
    }
}
