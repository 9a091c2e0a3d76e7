import Hosts
import WindowsStatus

/// A scenario file as written: directory, hosts and timeline, checked for keys and types but not
/// yet resolved against each other (that happens when the world is built).
struct ScenarioDocument: Sendable, Hashable {
    var name: String
    var description: String?
    /// The rule ids of docs/rules.md this scenario exercises (`A6`, `N2`, …).
    var rules: [String]
    var directory: DirectorySpec
    var hosts: [HostSpec]
    var steps: [ScenarioStep]
    /// The file it came from (`<string>` for YAML given as a string).
    var file: String
}

/// Where a spec came from, for error messages after parsing.
public struct SourceLocation: Sendable, Hashable, Codable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    public var column: Int?
    public var field: String
    public init(file: String, line: Int? = nil, column: Int? = nil, field: String) {
        self.file = file
        self.line = line
        self.column = column
        self.field = field
    }
    func error(_ message: String) -> ScenarioError {
        ScenarioError(file: file, line: line, column: column, field: field, message: message)
    }
    public var description: String {
        var s = file
        if let line { s += ":\(line)" }
        return s
    }
}

/// The directory: an LDIF file or inline objects (not both).
struct DirectorySpec: Sendable, Hashable {
    /// Absolute path of the LDIF file, resolved against the scenario file's directory.
    var ldif: String?
    var ldifLocation: SourceLocation?
    var domains: [DomainSpec] = []
    var trusts: [TrustSpec] = []
    var dcs: [DCSpec] = []
    var computers: [ComputerSpec] = []
    var users: [UserSpec] = []
    var groups: [GroupSpec] = []
    /// `replication-delay`: every link; `replication-delays`: single links (seconds).
    var replicationDelay: Int?
    var linkDelays: [LinkDelaySpec] = []
}

struct DomainSpec: Sendable, Hashable {
    var name: String
    var netbios: String?
    var at: SourceLocation
}

struct TrustSpec: Sendable, Hashable {
    /// The domain that trusts (accepts accounts of) `trusted`.
    var trusting: String
    var trusted: String
    var twoWay: Bool
    var at: SourceLocation
}

/// `replication-delays` entry: changes written on `from` reach `to` after `seconds`.
struct LinkDelaySpec: Sendable, Hashable {
    var from: String
    var to: String
    var seconds: Int
    var at: SourceLocation
}

struct DCSpec: Sendable, Hashable {
    var name: String
    var domain: String
    var at: SourceLocation
}

struct ComputerSpec: Sendable, Hashable {
    var name: String
    var domain: String?
    /// `none`, `unconstrained`, `kerberos-only`, `any-protocol` (nil: none, or kerberos-only when services are listed).
    var delegation: String?
    var allowedToDelegateTo: [String]
    var at: SourceLocation
}

struct UserSpec: Sendable, Hashable {
    var name: String
    var domain: String?
    var groups: [String]
    var sensitive: Bool
    var at: SourceLocation
}

struct GroupSpec: Sendable, Hashable {
    var name: String
    var domain: String?
    var members: [String]
    var at: SourceLocation
}

/// A host (a server running Hyper-V, or a management workstation when `hyperV` is false).
struct HostSpec: Sendable, Hashable {
    var name: String
    var domain: String?
    /// `2012`, `2012r2`, `2016`, `2019`, `2022`, `2025`.
    var os: String
    /// False when `os` was left out (then an LDIF account's `operatingSystem` decides, rule P4).
    var osGiven: Bool = true
    var hyperV: Bool
    var logonDC: String?
    var credentialGuard: Bool?
    var addresses: [String]
    /// Local group name → members (`CONTOSO\alice`, `CONTOSO\Domain Admins`, `alice`).
    var localGroups: [String: [String]]
    var vms: [String]
    var settings: HostSettingsSpec
    var at: SourceLocation
}

/// A host's initial migration settings (nil: the default of docs/rules.md).
struct HostSettingsSpec: Sendable, Hashable {
    var migrationEnabled: Bool?
    var maximumVirtualMachineMigrations: Int?
    var useAnyNetworkForMigration: Bool?
    var migrationNetworks: [String]?
    var authenticationType: MigrationAuthenticationType?
    var performanceOption: MigrationPerformanceOption?
    var at: SourceLocation?
}

/// One timeline step: what happens and what should come of it.
public struct ScenarioStep: Sendable, Hashable, Codable {
    public var action: ScenarioAction
    /// One expectation, or one per move for a `moves` step.
    public var expectations: [Expectation]
    /// A free-text label (`name:` in the file).
    public var label: String?
    public var at: SourceLocation?

    public init(_ action: ScenarioAction, expect: Expectation = .success, label: String? = nil) {
        self.action = action
        self.expectations = [expect]
        self.label = label
        self.at = nil
    }

    public init(_ action: ScenarioAction, expectEach: [Expectation], label: String? = nil) {
        self.action = action
        self.expectations = expectEach
        self.label = label
        self.at = nil
    }

    init(action: ScenarioAction, expectations: [Expectation], label: String?, at: SourceLocation?) {
        self.action = action
        self.expectations = expectations
        self.label = label
        self.at = at
    }
}

/// What a step should produce. Only the fields given are compared.
public struct Expectation: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Result: String, Sendable, Hashable, Codable { case success, queued, error }
    public var result: Result
    /// The HRESULT expected (for `error`).
    public var status: StatusCode?
    /// The rule that should decide it (`A1`).
    public var rule: String?
    /// `source` or `destination` (where a migration failed) — or `directory`, `host`.
    public var stage: String?
    /// The exact message (Hyper-V's two lines for a failed move).
    public var text: String?
    /// Warnings that must be present (`S1`).
    public var warnings: [String]

    public init(result: Result, status: StatusCode? = nil, rule: String? = nil, stage: String? = nil,
                text: String? = nil, warnings: [String] = []) {
        self.result = result
        self.status = status
        self.rule = rule
        self.stage = stage
        self.text = text
        self.warnings = warnings
    }

    public static let success = Expectation(result: .success)
    public static let queued = Expectation(result: .queued)
    /// An error with this status, optionally naming the rule and stage.
    public static func error(_ status: UInt32, rule: String? = nil, stage: String? = nil, text: String? = nil) -> Expectation {
        Expectation(result: .error, status: StatusCode(status), rule: rule, stage: stage, text: text)
    }

    public var description: String {
        var parts = [result.rawValue]
        if let status { parts.append(status.description) }
        if let rule { parts.append("rule \(rule)") }
        if let stage { parts.append("at \(stage)") }
        if !warnings.isEmpty { parts.append("warnings \(warnings.joined(separator: ","))") }
        if let text { parts.append("text \"\(text)\"") }
        return parts.joined(separator: ", ")
    }
}

/// Just an HRESULT, printed as `0x8009030E (SEC_E_NO_CREDENTIALS)` when the table knows it.
public struct StatusCode: Sendable, Hashable, Codable, CustomStringConvertible {
    public var value: UInt32
    public init(_ value: UInt32) { self.value = value }
    public var description: String {
        if let k = WindowsStatus.known(value) { return "\(k.hex) (\(k.symbol))" }
        return WindowsStatus(code: value, symbol: "", text: "").hex
    }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        let s = try c.decode(String.self)
        guard let st = WindowsStatus.parse(s) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "not a status: \(s)")
        }
        value = st.code
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(WindowsStatus(code: value, symbol: "", text: "").hex)
    }
}
