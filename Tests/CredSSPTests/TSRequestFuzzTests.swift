@testable import CredSSP
import Testing
import TestSupport

/// The TSRequest decoder on hostile input: only typed errors, never a crash.
@Suite struct TSRequestFuzzTests {
    static let valid: [UInt8] = {
        let request = TSRequest(version: 6, negoTokens: NegoData(tokens: [Array(repeating: 0x60, count: 40)]),
                                authInfo: [1, 2, 3], pubKeyAuth: Array(repeating: 7, count: 32), errorCode: 0x8009_0308,
                                clientNonce: Array(repeating: 0x11, count: 32))
        return (try? TSRequestDERTests.encode(request)) ?? []
    }()

    /// Decodes or fails with a CredSSP error of a decoding kind; anything else is a defect.
    static func check(_ bytes: [UInt8]) -> Bool {
        do {
            _ = try TSRequestCodec.decodeRequest(bytes, policy: CredSSPPolicy())
            return true
        } catch let error as CredSSPError {
            return [.malformedMessage, .sizeLimitExceeded].contains(error.kind) && error.status == .invalidToken
        } catch {
            return false
        }
    }

    @Test func randomBytes() {
        var rng = SeededGenerator(seed: 1)
        for _ in 0..<3000 {
            let count = Int.random(in: 0...300, using: &rng)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if !bytes.isEmpty, Bool.random(using: &rng) { bytes[0] = 0x30 }  // look like a SEQUENCE
            #expect(Self.check(bytes), "input \(bytes)")
        }
    }

    @Test func everyTruncation() {
        #expect(!Self.valid.isEmpty)
        for length in 0..<Self.valid.count {
            let bytes = Array(Self.valid.prefix(length))
            #expect(Self.check(bytes))
            #expect(throws: CredSSPError.self) { try TSRequestCodec.decodeRequest(bytes, policy: CredSSPPolicy()) }
        }
    }

    @Test func mutatedValidMessages() {
        var rng = SeededGenerator(seed: 2)
        for _ in 0..<5000 {
            var bytes = Self.valid
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            #expect(Self.check(bytes))
        }
    }

    @Test func hugeAndIndefiniteLengths() {
        let headers: [[UInt8]] = [
            [0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF], [0x30, 0x88, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
            [0x30, 0x80, 0x00, 0x00], [0x30, 0x81, 0x05], [0x30, 0x8F] + Array(repeating: 0xFF, count: 15),
            [0x30, 0x03, 0xA0, 0x84, 0x7F, 0xFF, 0xFF, 0xFF], [0x30, 0x05, 0xA0, 0x03, 0x02, 0x81, 0x01],
        ]
        for header in headers {
            #expect(throws: CredSSPError.self) { try TSRequestCodec.decodeRequest(header + [0, 1, 2], policy: CredSSPPolicy()) }
        }
    }

    @Test func wrongTagsAndDeepNesting() {
        var rng = SeededGenerator(seed: 3)
        for _ in 0..<2000 {
            var bytes = Self.valid
            // Replace one identifier octet on the first levels.
            let positions = [0, 2, 4, 7]
            bytes[positions[Int.random(in: 0..<positions.count, using: &rng)]] = UInt8.random(in: 0...255, using: &rng)
            #expect(Self.check(bytes))
        }
        let nested = Array(repeating: [UInt8]([0x30, 0x80]), count: 5000).flatMap { $0 }
        #expect(Self.check(nested))
        #expect(Self.check(Array(repeating: 0x30, count: 70_000)))
    }
}
