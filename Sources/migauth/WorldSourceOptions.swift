import ArgumentParser
import Foundation
import Scenario

/// Where `diagnose` and `audit` take their world from: an environment file (the default), a scenario
/// file (after some of its steps), an LDIF export, or a live DC (`--ldap`).
struct WorldSourceOptions: ParsableArguments {
    @Option(help: "The environment file (default: $MIGAUTH_ENV, else ./.migauth-env.json).") var env: String?
    @Option(help: "Take the world from this scenario file.") var scenario: String?
    @Option(name: .customLong("after-step"), help: "With --scenario: run this many of its steps first.") var afterStep: Int?
    @Option(help: "Take the directory from this LDIF file.") var ldif: String?
    @OptionGroup var live: LDAPOptions

    /// The world comes from a directory (LDIF or live), whose hosts have default settings.
    var fromDirectory: Bool { ldif != nil || live.ldap != nil }

    func validate() throws {
        if scenario != nil && ldif != nil { throw ValidationError("give --scenario or --ldif, not both") }
        if afterStep != nil && scenario == nil { throw ValidationError("--after-step needs --scenario") }
        if live.ldap != nil && (scenario != nil || ldif != nil) { throw ValidationError("give --ldap without --scenario and --ldif") }
    }

    /// Loads the world; an LDIF import's notes (skipped records) go to standard error.
    func load() throws -> SimulatedEnvironment {
        do {
            if let fromLDAP = try live.environment() { return fromLDAP }
            if let scenario { return try Scenario.load(file: scenario).environment(afterSteps: afterStep ?? 0) }
            if let ldif {
                let imported = try SimulatedEnvironment.fromLDIFWithNotes(file: ldif)
                for n in imported.notes { FileHandle.standardError.write(Data("note: \(n)\n".utf8)) }
                return imported.environment
            }
            let store = EnvironmentStore(path: env ?? EnvironmentStore.defaultPath(environment: ProcessInfo.processInfo.environment))
            return try store.load()
        } catch let error as CLIError {
            throw error
        } catch {
            throw CLIError("\(error)")
        }
    }
}
