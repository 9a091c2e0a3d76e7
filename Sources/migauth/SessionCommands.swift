import ArgumentParser
import Foundation
import Directory
import Hosts
import MigrationRules
import Scenario

/// `migauth sign-on`.
struct SignOn: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign-on",
        abstract: "Sign a user on to a host (console, Remote Desktop (mstsc), or Enter-PSSession with Kerberos or CredSSP).")
    @OptionGroup var options: EnvOptions
    @Option(help: "The user (alice or CONTOSO\\alice).") var user: String
    @Option(help: "The host signed on to.") var host: String
    @Option(help: "console, rdp, remote-shell-kerberos or remote-shell-credssp.") var method: SignOnKind = .console
    @Option(help: "For remote sessions: the machine the session comes from.") var from: String?
    func run() throws { try options.apply(.signOn(user: user, host: host, method: method, from: from)) }
}

/// `migauth sign-off`.
struct SignOff: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign-off", abstract: "End a user's sessions on a host (mirrors logoff / Exit-PSSession).")
    @OptionGroup var options: EnvOptions
    @Option(help: "The user.") var user: String
    @Option(help: "The host.") var host: String
    func run() throws { try options.apply(.signOff(user: user, host: host)) }
}

/// `migauth purge-tickets` — `klist purge`.
typealias PurgeTickets = HostActionCommand<PurgeTicketsAction>
enum PurgeTicketsAction: HostAction {
    static let configuration = CommandConfiguration(
        commandName: "purge-tickets",
        abstract: "Discard a host's Kerberos tickets so it gets new ones (mirrors klist purge -li 0x3e7).")
    static func action(host: String) -> ScenarioAction { .purgeTickets(host: host) }
}

/// `migauth restart` — `Restart-Computer`.
typealias Restart = HostActionCommand<RestartAction>
enum RestartAction: HostAction {
    static let configuration = CommandConfiguration(
        commandName: "restart",
        abstract: "Restart a host: sessions end and its tickets are discarded (mirrors Restart-Computer).")
    static func action(host: String) -> ScenarioAction { .restart(host: host) }
}

/// `migauth advance-clock`.
struct AdvanceClock: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "advance-clock",
        abstract: "Let simulated time pass (tickets expire after 10h; delayed replication arrives).")
    @OptionGroup var options: EnvOptions
    @Argument(help: "How long: 90, 90s, 15m, 10h, 1h30m, 2d.") var duration: DurationArgument
    func run() throws { try options.apply(.advanceClock(seconds: duration.seconds)) }
}

/// The move both `migauth move` and `migauth diagnose` take (Move-VM's parameters).
struct MoveArguments: ParsableArguments {
    @Option(help: "The user starting the move.") var user: String
    @Option(help: "The machine the move is started on (the user's sign-on there); default: the source.") var on: String?
    @Option(help: "The virtual machine.") var vm: String
    @Option(help: "The source host (default: the host that has the VM).") var from: String?
    @Option(help: "The destination host.") var to: String
    @Option(help: "live, storage or both.") var kind: MoveKind = .live
    @Option(help: "The destination address to connect to (default: its first address).") var address: String?
    @Option(help: "Which of the user's sessions on --on starts it, when there are several: console, rdp, remote-shell-kerberos or remote-shell-credssp.")
    var session: SignOnKind?

    var spec: MoveSpec {
        MoveSpec(user: user, startedOn: on, vm: vm, source: from, destination: to, kind: kind, address: address, session: session)
    }
}

/// `migauth move` — `Move-VM` / `Move-VMStorage`.
struct Move: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Move a VM (mirrors Move-VM; --kind storage mirrors Move-VMStorage, both Move-VM -IncludeStorage).",
        discussion: "Prints Hyper-V's two-line message on failure, then the rule, stage, explanation and fix. Exit 1 on failure.")
    @OptionGroup var options: EnvOptions
    @OptionGroup var move: MoveArguments
    func run() throws { try options.apply(.move(move.spec)) }
}

/// `migauth diagnose`.
struct Diagnose: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Explain whether a move would work, every rule that blocks it, and the fixes.",
        discussion: """
        The world comes from --scenario (its directory and hosts, optionally after running its first N \
        steps with --after-step), from --ldif (the directory, with default hosts for its computers), or \
        from the persistent environment. Nothing is changed. Exit 0 when the move would work, 1 otherwise. \
        An LDIF directory has no sessions and no VMs: --signed-on says how the user is signed on to the machine \
        the move starts on (--on, else --from), and the VM is taken to be on --from, so every rule is evaluated.
        """)
    @OptionGroup var source: WorldSourceOptions
    @Flag(help: "Print the diagnosis as JSON.") var json = false
    @Option(name: .customLong("signed-on"),
            help: "Assume the user is signed on to --on (else --from) by console, rdp, remote-shell-kerberos or remote-shell-credssp.")
    var signedOn: SignOnKind?
    @Option(name: .customLong("session-from"), help: "With --signed-on remote-shell-…/rdp: the machine the session comes from.")
    var sessionFrom: String?
    @OptionGroup var move: MoveArguments

    func validate() throws {
        if sessionFrom != nil && signedOn == nil { throw ValidationError("--session-from needs --signed-on") }
        if signedOn != nil && move.session != nil { throw ValidationError("give --signed-on or --session, not both") }
    }

    func run() throws {
        let environment = try source.load()
        let diagnosis = signedOn.map { environment.diagnose(move.spec, signedOn: $0, sessionFrom: sessionFrom) }
            ?? environment.diagnose(move.spec)
        if json { print(try diagnosis.jsonString()) } else { print(ReportFormatter.text(diagnosis), terminator: "") }
        if !diagnosis.wouldSucceed { throw ExitCode(1) }
    }
}
