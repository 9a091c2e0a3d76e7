/// Receive-side replay and sequence detection with the semantics of MIT krb5's `g_seqstate`
/// (64-bit sequence numbers, a 64-entry window behind the highest number seen).
package struct SequenceWindow: Sendable, Hashable {
    /// Outcome of checking one sequence number.
    package enum Status: Sendable, Hashable {
        /// Expected (or, without sequence detection, acceptable): GSS_S_COMPLETE.
        case inSequence
        /// Later than expected; earlier tokens are missing: GSS_S_GAP_TOKEN.
        case gap
        /// Earlier than the latest one seen, not a duplicate: GSS_S_UNSEQ_TOKEN.
        case unsequenced
        /// Seen before: GSS_S_DUPLICATE_TOKEN.
        case duplicate
        /// Too old to tell whether it is a replay: GSS_S_OLD_TOKEN.
        case old

        /// The matching error for `sequenceNumber`, nil for `.inSequence`.
        package func error(sequenceNumber: UInt64) -> KerberosCryptoError? {
            switch self {
            case .inSequence: nil
            case .gap: .gapToken(sequenceNumber: sequenceNumber)
            case .unsequenced: .unseqToken(sequenceNumber: sequenceNumber)
            case .duplicate: .duplicateToken(sequenceNumber: sequenceNumber)
            case .old: .oldToken(sequenceNumber: sequenceNumber)
            }
        }
    }

    package let replayDetection: Bool
    package let sequenceDetection: Bool
    private let base: UInt64
    /// Next expected number, relative to `base`.
    private var next: UInt64 = 0
    /// Bit i-1 set: number next-i (relative) was received.
    private var received: UInt64 = 0

    /// A window expecting `initialSequenceNumber` first.
    package init(initialSequenceNumber: UInt64, replayDetection: Bool = true, sequenceDetection: Bool = true) {
        base = initialSequenceNumber
        self.replayDetection = replayDetection
        self.sequenceDetection = sequenceDetection
    }

    /// Records `sequenceNumber` and classifies it.
    package mutating func check(_ sequenceNumber: UInt64) -> Status {
        guard replayDetection || sequenceDetection else { return .inSequence }
        let relative = sequenceNumber &- base
        if relative >= next {
            let offset = relative - next
            received = (offset >= 63 ? 0 : received << (offset + 1)) | 1
            next = relative &+ 1
            return offset > 0 && sequenceDetection ? .gap : .inSequence
        }
        let offset = next - relative
        if offset > 64 { return sequenceDetection ? .unsequenced : .old }
        let bit: UInt64 = 1 << (offset - 1)
        if replayDetection && received & bit != 0 { return .duplicate }
        received |= bit
        return sequenceDetection ? .unsequenced : .inSequence
    }
}
