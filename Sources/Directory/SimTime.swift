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

    /// The longest span a parsed duration may have (about 1,000 years): more is refused, never wrapped.
    public static let maximumParsedSeconds: Int64 = 1_000 * 366 * 86_400

    /// Parses `90`, `90s`, `15m`, `10h`, `2d`, or combinations such as `1h30m` (spaces ignored).
    /// Returns `nil` for anything else, including empty text and spans over ``maximumParsedSeconds``.
    public init?(parsing text: String) {
        var total: Int64 = 0
        var number: Int64? = nil
        func add(_ n: Int64, _ unit: Int64) -> Bool {
            let (scaled, o1) = n.multipliedReportingOverflow(by: unit)
            let (sum, o2) = total.addingReportingOverflow(scaled)
            guard !o1, !o2, sum <= SimDuration.maximumParsedSeconds else { return false }
            total = sum
            return true
        }
        for ch in text.lowercased() where ch != " " {
            if let d = ch.wholeNumberValue {
                let (times10, o1) = (number ?? 0).multipliedReportingOverflow(by: 10)
                let (next, o2) = times10.addingReportingOverflow(Int64(d))
                guard !o1, !o2, next <= SimDuration.maximumParsedSeconds else { return nil }
                number = next
                continue
            }
            guard let n = number else { return nil }
            let unit: Int64
            switch ch {
            case "s": unit = 1
            case "m": unit = 60
            case "h": unit = 3600
            case "d": unit = 86400
            default: return nil
            }
            guard add(n, unit) else { return nil }
            number = nil
        }
        if let n = number {
            guard add(n, 1) else { return nil }
        } else if total == 0 && !text.contains(where: \.isNumber) {
            return nil
        }
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
