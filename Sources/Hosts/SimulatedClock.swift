import Directory

/// The simulation's clock. It moves only when told to (``advance(by:)``).
public struct SimulatedClock: Sendable, Hashable, Codable {
    public private(set) var now: SimTime

    public init(now: SimTime = .zero) { self.now = now }

    /// Moves the clock forward; negative durations are ignored (time never runs backwards).
    public mutating func advance(by duration: SimDuration) {
        if duration.seconds > 0 { now = now + duration }
    }
}
