import ArgumentParser
import Directory
import Hosts
import MigrationRules
import Scenario

/// `migauth delegation add|remove`.
struct DelegationCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delegation",
        abstract: "Change a computer account's constrained delegation on one DC, as a user.",
        discussion: """
        Mirrors Set-ADComputer -Add/-Remove @{'msDS-AllowedToDelegateTo'=…} and the Delegation tab of \
        Active Directory Users and Computers ("Trust this computer for delegation to the specified \
        services only"). Only Domain Admins may do it (rule P2); the change reaches other DCs by \
        replication and a host only after new tickets (rule A3).
        """,
        subcommands: [Add.self, Remove.self])

    struct Target: ParsableArguments {
        @Option(help: "The DC the change is written on.") var dc: String
        @Option(name: .customLong("as"), help: "The user making the change (e.g. CONTOSO\\Administrator).") var user: String
        @Option(help: "The computer account (TestServer01 or TESTSERVER01$).") var computer: String
        @Option(name: .customLong("service"),
                help: "A service to delegate to, e.g. 'Microsoft Virtual System Migration Service/TestServer02' or cifs/TestServer02 (repeatable).")
        var services: [String]
        func validate() throws { if services.isEmpty { throw ValidationError("give at least one --service") } }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add services to msDS-AllowedToDelegateTo (Set-ADComputer -Add).")
        @OptionGroup var options: EnvOptions
        @OptionGroup var target: Target
        @Option(name: .customLong("protocol"),
                help: "kerberos-only (\"Use Kerberos only\") or any-protocol (\"Use any authentication protocol\").")
        var protocolChoice: DelegationKind?
        func run() throws {
            try options.apply(.delegation(DelegationChange(
                operation: .add, dc: target.dc, actingUser: target.user, computer: target.computer,
                services: target.services, protocolChoice: protocolChoice)))
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove services from msDS-AllowedToDelegateTo (Set-ADComputer -Remove).")
        @OptionGroup var options: EnvOptions
        @OptionGroup var target: Target
        func run() throws {
            try options.apply(.delegation(DelegationChange(
                operation: .remove, dc: target.dc, actingUser: target.user, computer: target.computer,
                services: target.services)))
        }
    }
}

/// `migauth replicate` — `repadmin /replicate` or `/syncall`.
struct Replicate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replicate directory changes between DCs (mirrors repadmin /replicate; with no options, repadmin /syncall).")
    @OptionGroup var options: EnvOptions
    @Option(help: "The source DC.") var from: String?
    @Option(help: "The destination DC.") var to: String?
    func run() throws { try options.apply(.replicate(from: from, to: to)) }
}
