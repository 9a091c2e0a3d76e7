import ArgumentParser
import Directory
import Hosts
import MigrationRules
import Scenario

/// A command that applies one action to one host of the persistent environment (`--host H`):
/// `enable-migration`, `disable-migration`, `purge-tickets`, `restart`.
struct HostActionCommand<Action: HostAction>: ParsableCommand {
    static var configuration: CommandConfiguration { Action.configuration }
    @OptionGroup var options: EnvOptions
    @Option(help: ArgumentHelp(stringLiteral: Action.hostHelp)) var host: String
    func run() throws { try options.apply(Action.action(host: host)) }
}

/// What a ``HostActionCommand`` is called and does.
protocol HostAction {
    static var configuration: CommandConfiguration { get }
    /// Help of `--host`.
    static var hostHelp: String { get }
    static func action(host: String) -> ScenarioAction
}

extension HostAction {
    static var hostHelp: String { "The host." }
}

/// `migauth enable-migration` — `Enable-VMMigration`.
typealias EnableMigration = HostActionCommand<EnableMigrationAction>
enum EnableMigrationAction: HostAction {
    static let configuration = CommandConfiguration(
        commandName: "enable-migration",
        abstract: "Enable incoming and outgoing live migrations on a host (mirrors Enable-VMMigration).")
    static let hostHelp = "The host (Enable-VMMigration -ComputerName)."
    static func action(host: String) -> ScenarioAction { .enableMigration(host: host) }
}

/// `migauth disable-migration` — `Disable-VMMigration`.
typealias DisableMigration = HostActionCommand<DisableMigrationAction>
enum DisableMigrationAction: HostAction {
    static let configuration = CommandConfiguration(
        commandName: "disable-migration", abstract: "Disable live migrations on a host (mirrors Disable-VMMigration).")
    static let hostHelp = "The host (Disable-VMMigration -ComputerName)."
    static func action(host: String) -> ScenarioAction { .disableMigration(host: host) }
}

/// `migauth set-host` — `Set-VMHost`.
struct SetHost: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set-host",
        abstract: "Change a host's migration settings (mirrors Set-VMHost).",
        discussion: "Only the options given change; at least one is required.")
    @OptionGroup var options: EnvOptions
    @Option(help: "The host (Set-VMHost -ComputerName).") var host: String
    @Option(name: .customLong("max-migrations"), help: "-MaximumVirtualMachineMigrations (simultaneous live migrations, ≥ 1).")
    var maxMigrations: Int?
    @Option(name: .customLong("use-any-network"), help: "-UseAnyNetworkForMigration (true or false).")
    var useAnyNetwork: Bool?
    @Option(name: .customLong("authentication-type"), help: "-VirtualMachineMigrationAuthenticationType (Kerberos or CredSSP).")
    var authenticationType: MigrationAuthenticationType?
    @Option(name: .customLong("performance-option"), help: "-VirtualMachineMigrationPerformanceOption (TCPIP, Compression or SMB).")
    var performanceOption: MigrationPerformanceOption?

    func validate() throws {
        if let m = maxMigrations, m < 1 { throw ValidationError("--max-migrations must be at least 1") }
        if change.isEmpty { throw ValidationError("give at least one setting to change") }
    }

    var change: HostSettingsChange {
        HostSettingsChange(maximumVirtualMachineMigrations: maxMigrations, useAnyNetworkForMigration: useAnyNetwork,
                           authenticationType: authenticationType, performanceOption: performanceOption)
    }

    func run() throws { try options.apply(.setHost(host: host, settings: change)) }
}

/// `migauth migration-network add|remove|set`.
struct MigrationNetwork: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migration-network",
        abstract: "Manage the networks a host accepts incoming live migrations on.",
        subcommands: [Add.self, Remove.self, Set.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add an incoming migration network (mirrors Add-VMMigrationNetwork).")
        @OptionGroup var options: EnvOptions
        @Option(help: "The host.") var host: String
        @Argument(help: "The subnet or address, e.g. 192.168.10.0/24 or 192.168.10.1.") var subnet: String
        @Option(help: "-Priority (lower is preferred).") var priority: Int?
        func run() throws { try options.apply(.addMigrationNetwork(host: host, subnet: subnet, priority: priority)) }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove an incoming migration network (mirrors Remove-VMMigrationNetwork).")
        @OptionGroup var options: EnvOptions
        @Option(help: "The host.") var host: String
        @Argument(help: "The subnet as it was added.") var subnet: String
        func run() throws { try options.apply(.removeMigrationNetwork(host: host, subnet: subnet)) }
    }

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change an incoming migration network (mirrors Set-VMMigrationNetwork).",
            discussion: "The seed's `Set-VMMigrationNetwork 192.168.10.1` with no other option adds that network when it is not yet listed.")
        @OptionGroup var options: EnvOptions
        @Option(help: "The host.") var host: String
        @Argument(help: "The subnet to change.") var subnet: String
        @Option(name: .customLong("new-subnet"), help: "-NewSubnet.") var newSubnet: String?
        @Option(help: "-Priority.") var priority: Int?
        func run() throws {
            try options.apply(.setMigrationNetwork(host: host, subnet: subnet, newSubnet: newSubnet, priority: priority))
        }
    }
}

/// `migauth new-vm` — `New-VM`.
struct NewVM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new-vm", abstract: "Create a running virtual machine on a host (mirrors New-VM).")
    @OptionGroup var options: EnvOptions
    @Option(help: "The host (New-VM -ComputerName).") var host: String
    @Argument(help: "The VM's name (New-VM -Name).") var name: String
    func run() throws { try options.apply(.newVM(host: host, name: name)) }
}

/// `migauth local-group add|remove`.
struct LocalGroupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "local-group",
        abstract: "Change a host's local Administrators or Hyper-V Administrators (rule P1).",
        subcommands: [Add.self, Remove.self])

    struct Target: ParsableArguments {
        @Option(help: "The host.") var host: String
        @Option(help: "Administrators or \"Hyper-V Administrators\".") var group: LocalGroup
        @Argument(help: "A domain user or group: CONTOSO\\alice, alice@contoso.com, \"CONTOSO\\Hyper-V Operators\".") var member: String
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a member (mirrors Add-LocalGroupMember).")
        @OptionGroup var options: EnvOptions
        @OptionGroup var target: Target
        func run() throws {
            try options.apply(.localGroupMember(host: target.host, group: target.group, member: target.member, add: true))
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a member (mirrors Remove-LocalGroupMember).")
        @OptionGroup var options: EnvOptions
        @OptionGroup var target: Target
        func run() throws {
            try options.apply(.localGroupMember(host: target.host, group: target.group, member: target.member, add: false))
        }
    }
}

extension LocalGroup: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
}
