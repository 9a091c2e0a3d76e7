import ArgumentParser
import Foundation
import Directory
import Hosts
import MigrationRules
import Scenario

/// `--env PATH` and `--json`, shared by every command that works on the persistent environment.
struct EnvOptions: ParsableArguments {
    @Option(name: .long, help: "The environment file (default: $MIGAUTH_ENV, else ./.migauth-env.json).")
    var env: String?

    @Flag(help: "Print the outcome as JSON.")
    var json = false

    var store: EnvironmentStore {
        EnvironmentStore(path: env ?? EnvironmentStore.defaultPath(environment: ProcessInfo.processInfo.environment))
    }

    /// Loads the environment, applies `action`, saves only when it was accepted, prints the outcome.
    ///
    /// A refused action leaves the file untouched (byte-identical); the exit code is then 1.
    func apply(_ action: ScenarioAction) throws {
        let store = self.store
        // Load, apply and save under the file's lock: concurrent commands never lose each other's changes.
        let outcome: ActionOutcome
        do {
            outcome = try store.update { environment in
                let outcome = environment.apply(action)
                return (outcome.changedWorld, outcome)
            }
        } catch {
            throw CLIError("\(error)")
        }
        if json {
            print(try outcome.jsonString())
        } else {
            print(ReportFormatter.text(outcome, for: action), terminator: "")
        }
        if outcome.result == .error { throw ExitCode(1) }
    }
}

/// A plain message on stderr and exit code 2 (bad input, unreadable files).
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Parses `10h`, `30m`, `1h30m`, `90` (seconds).
struct DurationArgument: ExpressibleByArgument {
    let seconds: Int
    init?(argument: String) {
        guard let d = SimDuration(parsing: argument) else { return nil }
        seconds = Int(d.seconds)
    }
}

extension SignOnKind: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
}

extension MoveKind: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
}

extension DelegationKind: ExpressibleByArgument {
    public init?(argument: String) {
        guard let k = DelegationKind(parsing: argument), k.isConstrained else { return nil }
        self = k
    }
}

extension MigrationAuthenticationType: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
}

extension MigrationPerformanceOption: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
}
