import ArgumentParser

/// The `migauth` command.
struct MigAuth: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migauth",
        abstract: "Simulate and explain Hyper-V live-migration authentication (Kerberos / CredSSP).",
        discussion: """
        Run scenario files (`migauth scenario run Fixtures/scenarios`), diagnose a move, or drive a \
        persistent simulated environment with commands that mirror the Hyper-V and AD cmdlets \
        (`--env PATH`, default $MIGAUTH_ENV or ./.migauth-env.json). See docs/cli.md.
        """,
        version: "0.1.0",
        subcommands: [
            ScenarioCommand.self, Diagnose.self, Audit.self, EnvCommand.self,
            EnableMigration.self, DisableMigration.self, MigrationNetwork.self, SetHost.self, NewVM.self,
            LocalGroupCommand.self,
            DelegationCommand.self, Replicate.self,
            SignOn.self, SignOff.self, PurgeTickets.self, Restart.self, AdvanceClock.self, Move.self,
            ServeCommand.self, MoveCommand.self,
        ])
}
