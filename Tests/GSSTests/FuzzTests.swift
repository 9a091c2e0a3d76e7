import GSS
import Testing
import TestSupport
import WindowsStatus

/// Proof 6: hostile input gives typed errors, never a crash.
@Suite("GSS bad input")
struct FuzzTests {
    nonisolated static func randomBytes(_ count: Int, _ rng: inout SeededGenerator) -> [UInt8] {
        rng.bytes(count)
    }

    @Test("random, truncated, mutated and oversized tokens to an acceptor", arguments: [UInt64(0x5EED_0001)])
    func acceptorTokens(seed: UInt64) async throws {
        let service = try await GSSFixture.service()
        let user = try await GSSFixture.user()
        let outcome = try await onThread { () throws -> (errors: Int, accepted: Int, statuses: Set<WindowsStatus>) in
            var rng = SeededGenerator(seed: seed)
            let acceptorCredential = try service.acceptorCredential()
            var initiator = GSSInitiatorContext(target: try service.targetName(), credential: try user.credential())
            let valid = try #require(try initiator.step().token)
            var errors = 0
            var accepted = 0
            var statuses: Set<WindowsStatus> = []
            for iteration in 0..<3000 {
                let token: [UInt8]
                switch iteration % 6 {
                case 0: token = Self.randomBytes(Int.random(in: 0...64, using: &rng), &rng)
                case 1: token = Self.randomBytes(Int.random(in: 65...4096, using: &rng), &rng)
                case 2: token = Array(valid.prefix(Int.random(in: 0..<valid.count, using: &rng)))
                case 3:
                    var mutated = valid
                    for _ in 0..<Int.random(in: 1...4, using: &rng) {
                        mutated[Int.random(in: 0..<mutated.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
                    }
                    token = mutated
                case 4: token = [0x60] + Self.randomBytes(Int.random(in: 1...512, using: &rng), &rng)  // GSS framing tag
                default: token = Self.randomBytes(Int.random(in: 256 * 1024 + 1...300 * 1024, using: &rng), &rng)
                }
                var acceptor = GSSAcceptorContext(credential: acceptorCredential)
                if let error = gssError({ () throws(GSSError) in _ = try acceptor.step(token) }) {
                    errors += 1
                    statuses.insert(error.windowsStatus)
                    #expect(error.windowsStatus.isFailure)
                    #expect(error.operation == .acceptSecContext)
                } else {
                    accepted += 1
                }
            }
            return (errors, accepted, statuses)
        }
        #expect(outcome.errors > 2900, "almost all hostile tokens must be refused")
        #expect(outcome.statuses.contains(.invalidToken))
    }

    @Test("random and truncated per-message tokens to an established context", arguments: [UInt64(0x5EED_0002)])
    func messageTokens(seed: UInt64) async throws {
        let service = try await GSSFixture.service()
        let user = try await GSSFixture.user()
        try await onThread {
            var rng = SeededGenerator(seed: seed)
            var initiator = GSSInitiatorContext(target: try service.targetName(), credential: try user.credential())
            var acceptor = GSSAcceptorContext(credential: try service.acceptorCredential())
            try InMemoryEstablishment.establish(&initiator, &acceptor)
            let wrapped = try initiator.wrap(Self.randomBytes(300, &rng))
            let mic = try initiator.getMIC([1, 2, 3])
            var refused = 0
            for iteration in 0..<2000 {
                var token: [UInt8]
                switch iteration % 4 {
                case 0: token = Self.randomBytes(Int.random(in: 0...400, using: &rng), &rng)
                case 1: token = Array(wrapped.prefix(Int.random(in: 0..<wrapped.count, using: &rng)))
                case 2:
                    token = wrapped
                    token[Int.random(in: 0..<token.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
                default: token = Array(mic.prefix(Int.random(in: 0..<mic.count, using: &rng)))
                }
                let results = [
                    gssError { () throws(GSSError) in _ = try acceptor.unwrap(token) },
                    gssError { () throws(GSSError) in _ = try acceptor.unwrapInPlace(&token) },
                    gssError { () throws(GSSError) in try acceptor.verifyMIC([1, 2, 3], mic: token) },
                ]
                refused += results.compactMap { $0 }.count
            }
            #expect(refused == 6000, "every hostile per-message token must be refused")
        }
    }
}
