import Directory
import Hosts
import MigrationRules

/// One thing a scenario (or a `migauth` command) does to the world, in the article's vocabulary.
///
/// Each case mirrors a cmdlet, an AD tool action or an operator action; ``ScenarioAction/cmdlet``
/// names it. Scenario files and the CLI both produce these; ``SimulatedEnvironment`` applies them to a
/// world through the rules engine.
public enum ScenarioAction: Sendable, Hashable, Codable {
    /// A user signs on to a host (`from` is the machine a remote session comes from).
    case signOn(user: String, host: String, method: SignOnKind, from: String?)
    /// A user signs off (all of that user's sessions on the host end).
    case signOff(user: String, host: String)
    /// `Enable-VMMigration`.
    case enableMigration(host: String)
    /// `Disable-VMMigration`.
    case disableMigration(host: String)
    /// `Set-VMHost` (only the given settings change).
    case setHost(host: String, settings: HostSettingsChange)
    /// `Add-VMMigrationNetwork`.
    case addMigrationNetwork(host: String, subnet: String, priority: Int?)
    /// `Remove-VMMigrationNetwork`.
    case removeMigrationNetwork(host: String, subnet: String)
    /// `Set-VMMigrationNetwork`.
    case setMigrationNetwork(host: String, subnet: String, newSubnet: String?, priority: Int?)
    /// `New-VM` on a host.
    case newVM(host: String, name: String)
    /// `Add-LocalGroupMember` / `Remove-LocalGroupMember` on a host (Administrators, Hyper-V Administrators).
    case localGroupMember(host: String, group: LocalGroup, member: String, add: Bool)
    /// Changes a computer account's delegation on one DC, done by one user (`Set-ADComputer` /
    /// the Delegation tab of Active Directory Users and Computers).
    case delegation(DelegationChange)
    /// Replicates the directory: from one DC to another, or everywhere when both are nil.
    case replicate(from: String?, to: String?)
    /// Advances the simulated clock.
    case advanceClock(seconds: Int)
    /// `klist purge` on a host: the host must get new tickets.
    case purgeTickets(host: String)
    /// Restarts a host: sessions end, tickets go, running moves finish or fail.
    case restart(host: String)
    /// `Move-VM` / `Move-VMStorage`.
    case move(MoveSpec)
    /// Several moves started at once (rule N2).
    case moves([MoveSpec])
    /// `Add-ADGroupMember` / `Remove-ADGroupMember` on a domain group, written on `dc` (nil: the domain's first DC).
    case domainGroupMember(group: String, member: String, add: Bool, dc: String?)
    /// `Set-ADAccountControl -AccountNotDelegated`: "Account is sensitive and cannot be delegated" (rule A4).
    case setSensitive(user: String, sensitive: Bool, dc: String?)
    /// Turns Credential Guard on or off on a host (rule A7).
    case setCredentialGuard(host: String, enabled: Bool)

    /// The cmdlet or tool this action mirrors.
    public var cmdlet: String {
        switch self {
        case .signOn(_, _, let m, _): m.tool
        case .signOff: "logoff"
        case .enableMigration: "Enable-VMMigration"
        case .disableMigration: "Disable-VMMigration"
        case .setHost: "Set-VMHost"
        case .addMigrationNetwork: "Add-VMMigrationNetwork"
        case .removeMigrationNetwork: "Remove-VMMigrationNetwork"
        case .setMigrationNetwork: "Set-VMMigrationNetwork"
        case .newVM: "New-VM"
        case .localGroupMember(_, _, _, let add): add ? "Add-LocalGroupMember" : "Remove-LocalGroupMember"
        case .delegation: "Set-ADComputer -Add/-Remove @{'msDS-AllowedToDelegateTo'=…}"
        case .replicate: "repadmin /syncall"
        case .advanceClock: "(time passes)"
        case .purgeTickets: "klist purge"
        case .restart: "Restart-Computer"
        case .move(let m): m.kind.cmdlet
        case .moves: "Move-VM (several at once)"
        case .domainGroupMember(_, _, let add, _): add ? "Add-ADGroupMember" : "Remove-ADGroupMember"
        case .setSensitive: "Set-ADAccountControl -AccountNotDelegated"
        case .setCredentialGuard: "Credential Guard (Group Policy: Virtualization Based Security)"
        }
    }
}

/// The `Set-VMHost` parameters a change sets (nil: unchanged).
public struct HostSettingsChange: Sendable, Hashable, Codable {
    /// `-MaximumVirtualMachineMigrations`.
    public var maximumVirtualMachineMigrations: Int?
    /// `-UseAnyNetworkForMigration`.
    public var useAnyNetworkForMigration: Bool?
    /// `-VirtualMachineMigrationAuthenticationType`.
    public var authenticationType: MigrationAuthenticationType?
    /// `-VirtualMachineMigrationPerformanceOption`.
    public var performanceOption: MigrationPerformanceOption?

    public init(maximumVirtualMachineMigrations: Int? = nil, useAnyNetworkForMigration: Bool? = nil,
                authenticationType: MigrationAuthenticationType? = nil, performanceOption: MigrationPerformanceOption? = nil) {
        self.maximumVirtualMachineMigrations = maximumVirtualMachineMigrations
        self.useAnyNetworkForMigration = useAnyNetworkForMigration
        self.authenticationType = authenticationType
        self.performanceOption = performanceOption
    }

    public var isEmpty: Bool {
        maximumVirtualMachineMigrations == nil && useAnyNetworkForMigration == nil
            && authenticationType == nil && performanceOption == nil
    }
}

/// Adding or removing services in a computer account's `msDS-AllowedToDelegateTo`.
public struct DelegationChange: Sendable, Hashable, Codable {
    public enum Operation: String, Sendable, Hashable, Codable { case add, remove }
    public var operation: Operation
    /// The DC the change is written on.
    public var dc: String
    /// Who makes the change (must be a Domain Admin of the account's domain, rule P2).
    public var actingUser: String
    /// The computer account whose delegation changes (`TestServer01` or `TESTSERVER01$`).
    public var computer: String
    /// Service principal names, for example `Microsoft Virtual System Migration Service/TestServer02`.
    public var services: [String]
    /// The protocol setting to choose while adding (nil: leave as is, "Kerberos only" if none).
    public var protocolChoice: DelegationKind?

    public init(operation: Operation, dc: String, actingUser: String, computer: String, services: [String],
                protocolChoice: DelegationKind? = nil) {
        self.operation = operation
        self.dc = dc
        self.actingUser = actingUser
        self.computer = computer
        self.services = services
        self.protocolChoice = protocolChoice
    }
}

/// A move as a scenario or the CLI states it: who starts it, where, which VM, between which hosts.
///
/// Unlike `MigrationRules.MoveSpec`, the source may be left out: it is then the host that
/// holds the VM when the step runs.
public struct MoveSpec: Sendable, Hashable, Codable {
    /// The user starting the move.
    public var user: String
    /// The machine the user starts it on (a sign-on there); defaults to the source.
    public var startedOn: String?
    public var vm: String
    /// The host the VM is on (defaults to the host that has the VM).
    public var source: String?
    public var destination: String
    public var kind: MoveKind
    /// The address the source connects to on the destination (defaults to the destination's first).
    public var address: String?
    /// Which of the user's sessions on `startedOn` starts it, when there are several
    /// (default: the one with reusable credentials: console, Remote Desktop, CredSSP shell, Kerberos shell).
    public var session: SignOnKind?

    public init(user: String, startedOn: String? = nil, vm: String, source: String? = nil, destination: String,
                kind: MoveKind = .live, address: String? = nil, session: SignOnKind? = nil) {
        self.session = session
        self.user = user
        self.startedOn = startedOn
        self.vm = vm
        self.source = source
        self.destination = destination
        self.kind = kind
        self.address = address
    }
}

extension SignOnKind {
    var tool: String {
        switch self {
        case .console: "console logon"
        case .remoteDesktop: "mstsc"
        case .remoteShellKerberos: "Enter-PSSession"
        case .remoteShellCredSSP: "Enter-PSSession -Authentication CredSSP"
        }
    }
}

extension MoveKind {
    var cmdlet: String {
        switch self {
        case .live: "Move-VM"
        case .storage: "Move-VMStorage"
        case .both: "Move-VM -IncludeStorage"
        }
    }
}
