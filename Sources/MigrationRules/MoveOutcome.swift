import Directory
import Hosts
import WindowsStatus

/// Why a move fails: the Windows status, where, which rule, and what to do about it.
public struct MigrationFailure: Error, Sendable, Hashable, Codable, CustomStringConvertible {
    public var rule: RuleID
    /// Rules that explain this failure further (A3 for stale tickets, A6 for the round trip).
    public var relatedRules: [RuleID]
    public var status: WindowsStatus
    public var stage: Stage
    /// Host names as configured (`TestServer01`).
    public var source: String
    public var destination: String
    public var vm: String
    /// The text Hyper-V shows. For A1, A2, A2b, A3, A4, A5 and A7 exactly the seed's two lines:
    /// `Virtual machine migration operation failed at migration Source.` and
    /// `Failed to establish a connection with host <destination>: No credentials are available in the security package (0x8009030E).`
    public var message: String
    /// Plain explanation of what went wrong.
    public var explanation: String
    /// Concrete commands or actions that fix it, in order.
    public var fixes: [String]

    public init(rule: RuleID, relatedRules: [RuleID] = [], status: WindowsStatus, stage: Stage, source: String,
                destination: String, vm: String, message: String, explanation: String, fixes: [String]) {
        self.rule = rule
        self.relatedRules = relatedRules
        self.status = status
        self.stage = stage
        self.source = source
        self.destination = destination
        self.vm = vm
        self.message = message
        self.explanation = explanation
        self.fixes = fixes
    }

    public var description: String { "[\(rule)] \(message)" }
}

/// A note that does not stop the move (S1: any network allowed; A3: a removed entry still in effect).
public struct RuleWarning: Sendable, Hashable, Codable, CustomStringConvertible {
    public var rule: RuleID
    /// The host it concerns.
    public var host: String
    public var message: String
    public var fixes: [String]

    public init(rule: RuleID, host: String, message: String, fixes: [String] = []) {
        self.rule = rule
        self.host = host
        self.message = message
        self.fixes = fixes
    }

    public var description: String { "[\(rule)] \(message)" }
}

/// What a move that authenticates does.
public struct MoveReport: Sendable, Hashable, Codable {
    public var move: MoveRequest
    /// Host names as configured.
    public var source: String
    public var destination: String
    public var authentication: MigrationAuthenticationType
    /// The destination address the connection uses.
    public var destinationAddress: IPv4Address?
    public var warnings: [RuleWarning]

    public init(move: MoveRequest, source: String, destination: String, authentication: MigrationAuthenticationType,
                destinationAddress: IPv4Address?, warnings: [RuleWarning]) {
        self.move = move
        self.source = source
        self.destination = destination
        self.authentication = authentication
        self.destinationAddress = destinationAddress
        self.warnings = warnings
    }
}

/// The result of evaluating a move.
public enum MoveOutcome: Sendable, Hashable, Codable {
    /// The move authenticates and runs now.
    case success(MoveReport)
    /// Rule N2: it authenticates but waits for a free slot; `position` is 1-based in the waiting line.
    /// Queued moves run once earlier ones finish; they do not fail.
    case queued(MoveReport, position: Int)
    case failure(MigrationFailure)

    public var isSuccess: Bool { if case .success = self { return true } else { return false } }
    public var isQueued: Bool { if case .queued = self { return true } else { return false } }
    public var failure: MigrationFailure? { if case .failure(let f) = self { return f } else { return nil } }
    public var report: MoveReport? {
        switch self {
        case .success(let r), .queued(let r, _): return r
        case .failure: return nil
        }
    }
    /// The rule that stopped the move, if any.
    public var rule: RuleID? { failure?.rule }
}

/// Every rule a move breaks (in the order Windows would hit them), with fixes, plus warnings.
public struct Diagnosis: Sendable, Hashable, Codable {
    public var move: MoveRequest
    public var failures: [MigrationFailure]
    public var warnings: [RuleWarning]

    public init(move: MoveRequest, failures: [MigrationFailure], warnings: [RuleWarning]) {
        self.move = move
        self.failures = failures
        self.warnings = warnings
    }

    public var succeeds: Bool { failures.isEmpty }
}
