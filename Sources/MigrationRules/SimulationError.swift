import Directory
import Hosts
import WindowsStatus

/// A step the world refuses (unknown host, P2 refusal, contradictory setting, …). Nothing changed.
public struct SimulationError: Error, Sendable, Hashable, Codable, CustomStringConvertible {
    public var status: WindowsStatus
    /// The rule enforced, when one is (`P2`).
    public var rule: RuleID?
    public var message: String

    public init(status: WindowsStatus, rule: RuleID? = nil, message: String) {
        self.status = status
        self.rule = rule
        self.message = message
    }

    public init(_ error: DirectoryError) {
        self.init(status: error.status, rule: error.rule.flatMap(RuleID.init(parsing:)), message: error.description)
    }

    public init(_ error: HostError) {
        self.init(status: error.status, message: error.message)
    }

    public var description: String {
        "\(rule.map { "[\($0)] " } ?? "")\(message) (\(status.symbol) \(status.hex))"
    }
}
