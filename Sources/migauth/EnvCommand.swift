import ArgumentParser
import Foundation
import Directory
import Hosts
import MigrationRules
import Scenario

/// `migauth env init|show`.
struct EnvCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "env",
        abstract: "Create or show the persistent simulated environment.",
        subcommands: [Init.self, Show.self, ExportLDIF.self])

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the environment file from an LDIF directory or a scenario file's world.",
            discussion: "Refuses to overwrite an existing file unless --force is given.")

        @OptionGroup var options: EnvOptions

        @Option(help: "An LDIF export of the directory (hosts are then created for its computer accounts).")
        var ldif: String?

        @Option(help: "A scenario file: its directory and hosts become the environment (its steps are not run).")
        var scenario: String?

        @Flag(help: "Overwrite an existing environment file.")
        var force = false

        @OptionGroup var live: LDAPOptions

        func validate() throws {
            if [ldif != nil, scenario != nil, live.ldap != nil].filter({ $0 }).count > 1 {
                throw ValidationError("give one of --ldif, --scenario and --ldap")
            }
        }

        func run() throws {
            let store = options.store
            if !force && FileManager.default.fileExists(atPath: store.path) {
                throw CLIError("\(store.path) exists; use --force to replace it")
            }
            var environment: SimulatedEnvironment
            var notes: [LDIFNote] = []
            do {
                if let fromLDAP = try live.environment() { environment = fromLDAP }
                else if let ldif { (environment, notes) = try SimulatedEnvironment.fromLDIFWithNotes(file: ldif) }
                else if let scenario { environment = try Scenario.load(file: scenario).initialEnvironment() }
                else { environment = SimulatedEnvironment.seedWorld() }
                try store.save(environment)
            } catch {
                throw CLIError("\(error)")
            }
            for n in notes { FileHandle.standardError.write(Data("note: \(n)\n".utf8)) }
            print("created \(store.path): \(environment.summary)")
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the environment's hosts, settings and sessions.")

        @OptionGroup var options: EnvOptions

        func run() throws {
            let environment: SimulatedEnvironment
            do { environment = try options.store.load() } catch { throw CLIError("\(error)") }
            if options.json { print(try environment.jsonString()) } else { print(environment.overview, terminator: "") }
        }
    }

    struct ExportLDIF: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export-ldif",
            abstract: "Write the environment's directory as LDIF (ldifde -f / ldapsearch -LLL shape).",
            discussion: """
            Each domain as its first DC holds it (replicate first to include changes written on other DCs). \
            `env init --ldif` of the result gives the same domains, trusts, DCs and accounts.
            """)

        @OptionGroup var options: EnvOptions

        @Option(name: [.short, .long], help: "Write to this file (default: standard output).")
        var output: String?

        func run() throws {
            let environment: SimulatedEnvironment
            do { environment = try options.store.load() } catch { throw CLIError("\(error)") }
            let text = environment.world.directory.exportLDIF()
            guard let output else { print(text, terminator: ""); return }
            do { try DurableFile.write(Data(text.utf8), to: output) } catch { throw CLIError("cannot write \(output): \(error)") }
        }
    }
}
