/// The rules of docs/rules.md, by id.
public enum RuleID: String, Sendable, Hashable, Codable, CaseIterable, Comparable, CustomStringConvertible {
    case p1 = "P1", p2 = "P2", p3 = "P3", p4 = "P4", p5 = "P5"
    case n1 = "N1", n2 = "N2"
    case a1 = "A1", a2 = "A2", a2b = "A2b", a3 = "A3", a4 = "A4", a5 = "A5", a6 = "A6", a7 = "A7"
    case s1 = "S1"

    /// Parses `P1`, `a2b`, …
    public init?(parsing text: String) {
        guard let r = RuleID.allCases.first(where: { $0.rawValue.caseInsensitiveCompare(text) == .orderedSame }) else { return nil }
        self = r
    }

    public var title: String {
        switch self {
        case .p1: return "permission to migrate"
        case .p2: return "permission to configure delegation"
        case .p3: return "prerequisites"
        case .p4: return "no down-level moves"
        case .p5: return "same or trusting domains"
        case .n1: return "migration networks"
        case .n2: return "concurrency"
        case .a1: return "CredSSP needs a sign-on at the source"
        case .a2: return "Kerberos needs constrained delegation"
        case .a2b: return "later generations need protocol transition"
        case .a3: return "delegation takes effect late"
        case .a4: return "non-delegable users"
        case .a5: return "constrained delegation stays in its domain"
        case .a6: return "the round trip"
        case .a7: return "Credential Guard"
        case .s1: return "migration traffic"
        }
    }

    public static func < (a: RuleID, b: RuleID) -> Bool {
        (allCases.firstIndex(of: a) ?? 0) < (allCases.firstIndex(of: b) ?? 0)
    }

    public var description: String { rawValue }
}
