/// A point on the simulated clock, in whole seconds since the simulation started.
///
/// Simulated time only moves when a scenario advances it, so every outcome is deterministic.
public struct SimTime: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var seconds: Int64

    public init(seconds: Int64) { self.seconds = seconds }

    public static let zero = SimTime(seconds: 0)

    public static func < (a: SimTime, b: SimTime) -> Bool { a.seconds < b.seconds }
    public static func + (t: SimTime, d: SimDuration) -> SimTime { SimTime(seconds: t.seconds &+ d.seconds) }
    public static func - (a: SimTime, b: SimTime) -> SimDuration { SimDuration(seconds: a.seconds &- b.seconds) }

    public var description: String { "T+\(SimDuration(seconds: seconds))" }

    public init(from decoder: any Decoder) throws {
        seconds = try decoder.singleValueContainer().decode(Int64.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(seconds)
    }
}

/// A span of simulated time in whole seconds.
public struct SimDuration: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var seconds: Int64

    public init(seconds: Int64) { self.seconds = seconds }

    public static func seconds(_ s: Int64) -> SimDuration { SimDuration(seconds: s) }
    public static func minutes(_ m: Int64) -> SimDuration { SimDuration(seconds: m * 60) }
    public static func hours(_ h: Int64) -> SimDuration { SimDuration(seconds: h * 3600) }

    public static func < (a: SimDuration, b: SimDuration) -> Bool { a.seconds < b.seconds }

    /// Parses `90`, `90s`, `15m`, `10h`, `2d`, or combinations such as `1h30m`.
    public init?(parsing text: String) {
        var total: Int64 = 0
        var number: Int64? = nil
        for ch in text.lowercased() where ch != " " {
            if let d = ch.wholeNumberValue {
                number = (number ?? 0) * 10 + Int64(d)
                continue
            }
            guard let n = number else { return nil }
            switch ch {
            case "s": total += n
            case "m": total += n * 60
            case "h": total += n * 3600
            case "d": total += n * 86400
            default: return nil
            }
            number = nil
        }
        if let n = number { total += n }
        else if text.isEmpty { return nil }
        self.seconds = total
    }

    /// `10h`, `1h30m`, `45s`.
    public var description: String {
        if seconds == 0 { return "0s" }
        var s = seconds < 0 ? -seconds : seconds
        var out = seconds < 0 ? "-" : ""
        let h = s / 3600; s %= 3600
        let m = s / 60; s %= 60
        if h > 0 { out += "\(h)h" }
        if m > 0 { out += "\(m)m" }
        if s > 0 { out += "\(s)s" }
        return out
    }

    public init(from decoder: any Decoder) throws {
        seconds = try decoder.singleValueContainer().decode(Int64.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(seconds)
    }
}
