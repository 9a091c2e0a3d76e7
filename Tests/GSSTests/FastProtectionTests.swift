#if canImport(Glibc)
import Glibc
#endif
import GSS
import Testing
import TestSupport
import WindowsStatus

/// Two in-memory contexts of one enctype whose sides use the fast path (KerberosCrypto) or MIT,
/// as chosen: the MIT side is the reference the fast side must interoperate and agree with.
struct FastPair: ~Copyable {
    var initiator: GSSInitiatorContext
    var acceptor: GSSAcceptorContext

    /// A fresh service and user per pair, so no cached ticket of another enctype is reused.
    static func endpoints() async throws -> (GSSFixture.Service, GSSFixture.User) {
        (try await GSSFixture.service("fastpath"), try await GSSFixture.user())
    }

    init(_ endpoints: (GSSFixture.Service, GSSFixture.User), enctype: Int32, flags: GSSContextFlags = .standard,
         lifetime: Duration? = nil, fastInitiator: Bool, fastAcceptor: Bool) throws {
        let credential = try endpoints.1.credential()
        try credential.setAllowableEnctypes([enctype])
        let target = try endpoints.0.targetName()
        let acceptorCredential = try endpoints.0.acceptorCredential()
        var initiator = GSSInitiatorContext(target: target, credential: credential, flags: flags, lifetime: lifetime)
        var acceptor = GSSAcceptorContext(credential: acceptorCredential)
        initiator.allowsFastProtection = fastInitiator
        acceptor.allowsFastProtection = fastAcceptor
        try InMemoryEstablishment.establish(&initiator, &acceptor)
        self.initiator = initiator
        self.acceptor = acceptor
    }
}

/// What a receiver made of a token: the message, or the major status it refused it with.
enum Outcome: Equatable, CustomStringConvertible {
    case accepted([UInt8], confidential: Bool)
    case refused(UInt32)

    var description: String {
        switch self {
        case .accepted(let m, let c): "accepted \(m.count) octets (conf \(c))"
        case .refused(let major): "refused \(GSSMajorStatus(rawValue: major))"
        }
    }
}

func unwrapOutcome(_ token: [UInt8], at receiver: inout some GSSSecurityContext & ~Copyable) -> Outcome {
    do {
        let u = try receiver.unwrap(token)
        return .accepted(u.message, confidential: u.confidential)
    } catch {
        return .refused(error.major.rawValue)
    }
}

func verifyOutcome(_ message: [UInt8], _ mic: [UInt8], at receiver: inout some GSSSecurityContext & ~Copyable) -> Outcome {
    do {
        try receiver.verifyMIC(message, mic: mic)
        return .accepted(message, confidential: false)
    } catch {
        return .refused(error.major.rawValue)
    }
}

extension SeededGenerator {
    /// `count` pseudo-random octets, eight at a time (fast enough for MiB-sized messages).
    mutating func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { raw in
            var i = 0
            while i < count {
                var word = next()
                for _ in 0..<min(8, count - i) { raw[i] = UInt8(truncatingIfNeeded: word); word >>= 8; i += 1 }
            }
        }
        return out
    }
}

/// One message of an exchange: its size, sealed or only signed, `wrap` or `wrapInPlace`.
struct MessageCase: CustomStringConvertible {
    let size: Int
    let encrypt: Bool
    let inPlace: Bool
    var description: String { "\(size) octets, encrypt \(encrypt), in place \(inPlace)" }

    /// Fixed sizes around the block and header boundaries, cycling through the forms.
    static func fixed(_ sizes: [Int]) -> [MessageCase] {
        sizes.enumerated().map { MessageCase(size: $1, encrypt: $0 % 3 != 1, inPlace: $0 % 2 == 0) }
    }
}

/// Messages both ways between a fast side and an MIT side (`wrap`/`wrapInPlace` on one,
/// `unwrap`/`unwrapInPlace` on the other) and a MIC each way; every message must arrive intact.
func exchange(fast: inout some GSSSecurityContext & ~Copyable, mit: inout some GSSSecurityContext & ~Copyable,
              cases: [MessageCase], rng: inout SeededGenerator, context: String = "") throws {
    for item in cases {
        let (size, encrypt, inPlace) = (item.size, item.encrypt, item.inPlace)
        let message = rng.bytes(size)
        for fastSends in [true, false] {
            var token: [UInt8]
            if inPlace {
                var data = message
                let parts = fastSends ? try fast.wrapInPlace(&data, encrypt: encrypt)
                                      : try mit.wrapInPlace(&data, encrypt: encrypt)
                token = parts.header + data + parts.padding + parts.trailer
            } else {
                token = fastSends ? try fast.wrap(message, encrypt: encrypt) : try mit.wrap(message, encrypt: encrypt)
            }
            let received: (message: [UInt8], confidential: Bool)
            if inPlace {
                let r = fastSends ? try mit.unwrapInPlace(&token) : try fast.unwrapInPlace(&token)
                received = (Array(token[r.range]), r.confidential)
            } else {
                let u = fastSends ? try mit.unwrap(token) : try fast.unwrap(token)
                received = (u.message, u.confidential)
            }
            #expect(received.message == message, "\(context) \(item), fast sends \(fastSends)")
            #expect(received.confidential == encrypt)
            let mic = fastSends ? try fast.getMIC(message) : try mit.getMIC(message)
            if fastSends { try mit.verifyMIC(message, mic: mic) } else { try fast.verifyMIC(message, mic: mic) }
        }
    }
}

@Suite("GSS fast per-message path (KerberosCrypto) against MIT")
struct FastProtectionTests {
    static let enctypes: [Int32] = [17, 18, 19, 20]

    @Test("chosen automatically for every supported enctype; interoperates with MIT in both roles",
          arguments: enctypes, [true, false])
    func interop(enctype: Int32, mutual: Bool) async throws {
        let flags: GSSContextFlags = mutual ? .standard : [.replay, .sequence, .integrity, .confidentiality]
        for fastInitiator in [true, false] {
            let endpoints = try await FastPair.endpoints()
            try await onThread {
                var pair = try FastPair(endpoints, enctype: enctype, flags: flags,
                                        fastInitiator: fastInitiator, fastAcceptor: !fastInitiator)
                #expect(pair.initiator.protectionPath == .undecided)
                var rng = SeededGenerator(seed: UInt64(enctype) << 8 | (mutual ? 2 : 0) | (fastInitiator ? 1 : 0))
                let cases = MessageCase.fixed([0, 1, 15, 16, 17, 33, 1000, 65_536, 100_003])
                if fastInitiator {
                    try exchange(fast: &pair.initiator, mit: &pair.acceptor, cases: cases, rng: &rng)
                    #expect(pair.initiator.protectionPath == .kerberosCrypto(enctype: enctype))
                    #expect(pair.acceptor.protectionPath == .mit)
                } else {
                    try exchange(fast: &pair.acceptor, mit: &pair.initiator, cases: cases, rng: &rng)
                    #expect(pair.acceptor.protectionPath == .kerberosCrypto(enctype: enctype))
                    #expect(pair.initiator.protectionPath == .mit)
                }
                // MIT's context stays alive behind the fast path: inquiry and size limits still work.
                let names = try pair.initiator.inquire()
                #expect(names.isOpen)
                #expect(try pair.acceptor.wrapSizeLimit(maximumTokenSize: 65_536) > 65_000)
            }
        }
    }

    /// Property: for random sizes from 0 octets to 4 MiB (seeded, so a failure names a replayable
    /// case), random forms, both roles, a message wrapped by the fast path unwraps at MIT and one
    /// wrapped by MIT unwraps on the fast path, through the public API only.
    @Test("property: random sizes up to 4 MiB round-trip fast ⇄ MIT through the public API", arguments: enctypes)
    func randomSizesRoundTrip(enctype: Int32) async throws {
        let seed = 0x9A0D_5EED_0000 + UInt64(enctype)
        for fastInitiator in [true, false] {
            let endpoints = try await FastPair.endpoints()
            try await onThread {
                var pair = try FastPair(endpoints, enctype: enctype, fastInitiator: fastInitiator,
                                        fastAcceptor: !fastInitiator)
                var rng = SeededGenerator(seed: seed ^ (fastInitiator ? 0x100 : 0))
                // Always 0 octets and one message of 2–4 MiB, then random sizes at four scales.
                var cases = [MessageCase(size: 0, encrypt: true, inPlace: false),
                             MessageCase(size: (2 << 20) + Int(rng.next() % (2 << 20)), encrypt: rng.next() & 1 == 0,
                                         inPlace: rng.next() & 1 == 0)]
                for _ in 0..<8 {
                    let r = rng.next()
                    let limit = [64, 70_000, 1 << 20, 4 << 20][Int(r % 4)]
                    cases.append(MessageCase(size: Int(rng.next() % UInt64(limit + 1)), encrypt: r & 0x10 == 0,
                                             inPlace: r & 0x20 == 0))
                }
                let context = "seed 0x\(String(seed, radix: 16)), fast initiator \(fastInitiator):"
                if fastInitiator {
                    try exchange(fast: &pair.initiator, mit: &pair.acceptor, cases: cases, rng: &rng, context: context)
                } else {
                    try exchange(fast: &pair.acceptor, mit: &pair.initiator, cases: cases, rng: &rng, context: context)
                }
                #expect((fastInitiator ? pair.initiator.protectionPath : pair.acceptor.protectionPath)
                        == .kerberosCrypto(enctype: enctype))
                #expect((fastInitiator ? pair.acceptor.protectionPath : pair.initiator.protectionPath) == .mit)
            }
        }
    }

    /// SPNEGO forwards the key inquiry to its Kerberos context, so SPNEGO contexts get the fast
    /// path too; the MIT side (opted out) must accept its tokens and the reverse.
    @Test("SPNEGO contexts take the fast path as well")
    func spnego() async throws {
        let (service, user) = try await FastPair.endpoints()
        try await onThread {
            let both: [GSSMechanism] = [.kerberos, .spnego]
            var initiator = GSSInitiatorContext(target: try service.targetName(),
                                                credential: try user.credential(mechanisms: both), mechanism: .spnego)
            var acceptor = GSSAcceptorContext(credential: try service.acceptorCredential(mechanisms: both))
            acceptor.allowsFastProtection = false
            try InMemoryEstablishment.establish(&initiator, &acceptor)
            var rng = SeededGenerator(seed: 0x5E0_0001)
            try exchange(fast: &initiator, mit: &acceptor, cases: MessageCase.fixed([0, 17, 4096, 100_003]), rng: &rng)
            #expect(initiator.mechanism == .spnego)
            #expect(initiator.protectionPath == .kerberosCrypto(enctype: 18))
            #expect(acceptor.protectionPath == .mit)
        }
    }

    /// The same altered, truncated or extended tokens, once made by the fast side for MIT and once
    /// made by MIT for the fast side: both receivers must answer alike, status for status.
    @Test("altered and truncated tokens: the fast path refuses with MIT's statuses", arguments: enctypes)
    func tamperedTokensSameStatusAsMIT(enctype: Int32) async throws {
        for fastInitiator in [true, false] {
            let endpoints = try await FastPair.endpoints()
            try await onThread {
                var pair = try FastPair(endpoints, enctype: enctype, fastInitiator: fastInitiator,
                                        fastAcceptor: !fastInitiator)
                var rng = SeededGenerator(seed: 0xA17E_0000 | UInt64(enctype))
                let message = FuzzTests.randomBytes(100, &rng)
                var refusedByBoth = 0
                for kind in ["sealed", "signed", "mic"] {
                    for mutation in Self.mutations(tokenLength: kind == "mic" ? 16 + 24 : 180) {
                        func make(_ side: inout some GSSSecurityContext & ~Copyable) throws -> [UInt8] {
                            kind == "mic" ? try side.getMIC(message) : try side.wrap(message, encrypt: kind == "sealed")
                        }
                        func receive(_ token: [UInt8], _ side: inout some GSSSecurityContext & ~Copyable) -> Outcome {
                            kind == "mic" ? verifyOutcome(message, token, at: &side) : unwrapOutcome(token, at: &side)
                        }
                        // fast → MIT and MIT → fast, the same mutation
                        let atMIT: Outcome, atFast: Outcome
                        if fastInitiator {
                            atMIT = receive(mutation.apply(try make(&pair.initiator)), &pair.acceptor)
                            atFast = receive(mutation.apply(try make(&pair.acceptor)), &pair.initiator)
                        } else {
                            atMIT = receive(mutation.apply(try make(&pair.acceptor)), &pair.initiator)
                            atFast = receive(mutation.apply(try make(&pair.initiator)), &pair.acceptor)
                        }
                        #expect(atFast == atMIT, "\(kind) \(mutation.name): fast \(atFast), MIT \(atMIT)")
                        if case .refused = atMIT { refusedByBoth += 1 }
                    }
                }
                #expect(refusedByBoth > 40, "most mutations must be refused (\(refusedByBoth))")
                #expect(pair.initiator.protectionPath == (fastInitiator ? .kerberosCrypto(enctype: enctype) : .mit))
            }
        }
    }

    struct Mutation {
        let name: String
        let apply: ([UInt8]) -> [UInt8]
    }

    static func mutations(tokenLength: Int) -> [Mutation] {
        var list: [Mutation] = []
        for position in [0, 1, 2, 3, 4, 5, 6, 7, 8, 15, 16, 17, 31, 32, 40, 60, -13, -1] {
            list.append(Mutation(name: "flip bit in octet \(position)") { token in
                var t = token
                let i = position >= 0 ? position : t.count + position
                if i >= 0, i < t.count { t[i] ^= 0x01 }
                return t
            })
        }
        for length in [0, 1, 15, 16, 17, 31, 32, 47, -1, -12] {
            list.append(Mutation(name: "truncated to \(length)") { token in
                Array(token.prefix(length >= 0 ? length : token.count + length))
            })
        }
        list.append(Mutation(name: "one octet appended") { $0 + [0] })
        list.append(Mutation(name: "RRC set to 5") { token in
            var t = token
            if t.count > 7 { t[6] = 0; t[7] = 5 }
            return t
        })
        return list
    }

    /// Replays and reordering, delivered alike to the fast side and to MIT.
    @Test("replayed and reordered tokens: DUPLICATE, GAP, UNSEQ and OLD as MIT reports them",
          arguments: [true, false])
    func sequenceStatusesSameAsMIT(sequenceDetection: Bool) async throws {
        let flags: GSSContextFlags = sequenceDetection ? .standard : [.mutual, .replay, .integrity, .confidentiality]
        let endpoints = try await FastPair.endpoints()
        try await onThread {
            var pair = try FastPair(endpoints, enctype: 18, flags: flags, fastInitiator: true, fastAcceptor: false)
            let message = Array("in order?".utf8)
            var fastTokens: [[UInt8]] = [], mitTokens: [[UInt8]] = []
            for _ in 0..<70 {
                fastTokens.append(try pair.initiator.wrap(message))
                mitTokens.append(try pair.acceptor.wrap(message))
            }
            let order = [0, 0, 2, 1, 1, 3, 69, 4, 3]
            var atMIT: [Outcome] = [], atFast: [Outcome] = []
            for i in order {
                atMIT.append(unwrapOutcome(fastTokens[i], at: &pair.acceptor))
                atFast.append(unwrapOutcome(mitTokens[i], at: &pair.initiator))
            }
            #expect(atFast == atMIT, "fast \(atFast), MIT \(atMIT)")
            let ok = Outcome.accepted(message, confidential: true)
            let dup = Outcome.refused(GSSMajorStatus.duplicateToken)
            let expected: [Outcome] = sequenceDetection
                ? [ok, dup, .refused(GSSMajorStatus.gapToken), .refused(GSSMajorStatus.unseqToken), dup, ok,
                   .refused(GSSMajorStatus.gapToken), .refused(GSSMajorStatus.unseqToken),
                   .refused(GSSMajorStatus.unseqToken)]  // more than 64 behind: not tracked any more
                : [ok, dup, ok, ok, dup, ok, ok, .refused(GSSMajorStatus.oldToken), .refused(GSSMajorStatus.oldToken)]
            #expect(atMIT == expected, "MIT itself: \(atMIT)")
            #expect(pair.initiator.protectionPath == .kerberosCrypto(enctype: 18))
            #expect(pair.acceptor.protectionPath == .mit)
        }
    }

    /// MIT 1.20 does not look at the context's end time in per-message calls (wrap, MIC, unwrap
    /// all keep working after the ticket expired); the fast path must not refuse either.
    @Test("after the ticket's end time, per-message calls keep working on both paths, as in MIT 1.20")
    func expiredTicket() async throws {
        let endpoints = try await FastPair.endpoints()
        try await onThread {
            // A 2-second service ticket; the fast side opposite MIT.
            var pair = try FastPair(endpoints, enctype: 18, lifetime: .seconds(2), fastInitiator: true, fastAcceptor: false)
            let message = Array("late".utf8)
            #expect(try pair.acceptor.unwrap(pair.initiator.wrap(message)).message == message)
            #expect(pair.initiator.protectionPath == .kerberosCrypto(enctype: 18))
            // The time left, read after the set-up (which may take over a second in a full parallel run).
            let left = pair.initiator.lifetime
            #expect(left.map { $0 <= .seconds(2) } == true, "\(String(describing: left))")
            usleep(3_500_000)
            var fromFast: [UInt8] = [], fromMIT: [UInt8] = [], fastMIC: [UInt8] = [], mitMIC: [UInt8] = []
            let mitErrors = [gssError { () throws(GSSError) in fromMIT = try pair.acceptor.wrap(message) },
                             gssError { () throws(GSSError) in mitMIC = try pair.acceptor.getMIC(message) }]
            let fastErrors = [gssError { () throws(GSSError) in fromFast = try pair.initiator.wrap(message) },
                              gssError { () throws(GSSError) in fastMIC = try pair.initiator.getMIC(message) }]
            #expect(mitErrors.allSatisfy { $0 == nil }, "MIT: \(mitErrors)")
            #expect(fastErrors.allSatisfy { $0 == nil }, "fast: \(fastErrors)")
            #expect(try pair.acceptor.unwrap(fromFast).message == message)
            #expect(try pair.initiator.unwrap(fromMIT).message == message)
            #expect(try pair.acceptor.verifyMIC(message, mic: fastMIC) == nil, "default QOP")
            #expect(try pair.initiator.verifyMIC(message, mic: mitMIC) == nil, "default QOP")
        }
    }

    @Test("QOP other than 0 goes to MIT (GSS_S_BAD_QOP) without disturbing the sequence; opt-out sticks")
    func qopAndOptOut() async throws {
        let endpoints = try await FastPair.endpoints()
        try await onThread {
            var pair = try FastPair(endpoints, enctype: 20, fastInitiator: true, fastAcceptor: true)
            let message = Array("qop".utf8)
            let error = gssError { () throws(GSSError) in _ = try pair.initiator.wrap(message, qop: 1) }
            #expect(error?.major == .badQOP, "\(String(describing: error))")
            #expect(error?.windowsStatus == .qopNotSupported)
            #expect(pair.initiator.protectionPath == .undecided, "a refused QOP does not decide the path")
            #expect(try pair.acceptor.unwrap(pair.initiator.wrap(message)).message == message)
            #expect(gssError { () throws(GSSError) in _ = try pair.initiator.getMIC(message, qop: 7) }?.major == .badQOP)
            #expect(try pair.acceptor.unwrap(pair.initiator.wrap(message)).message == message, "still in sequence")
            #expect(pair.initiator.protectionPath == .kerberosCrypto(enctype: 20))
            #expect(pair.acceptor.protectionPath == .kerberosCrypto(enctype: 20))
            pair.initiator.allowsFastProtection = false  // too late: the path is decided
            #expect(try pair.acceptor.unwrap(pair.initiator.wrap(message)).message == message)
            #expect(pair.initiator.protectionPath == .kerberosCrypto(enctype: 20))
        }
        let optOut = try await FastPair.endpoints()
        try await onThread {
            var pair = try FastPair(optOut, enctype: 18, fastInitiator: false, fastAcceptor: false)
            #expect(try pair.acceptor.unwrap(pair.initiator.wrap([1, 2, 3])).message == [1, 2, 3])
            #expect(pair.initiator.protectionPath == .mit)
            #expect(pair.acceptor.protectionPath == .mit)
        }
    }
}
