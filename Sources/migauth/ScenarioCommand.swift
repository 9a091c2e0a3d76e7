import ArgumentParser
import Foundation
import Directory
import Hosts
import MigrationRules
import Scenario

/// `migauth scenario run|validate`.
struct ScenarioCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scenario",
        abstract: "Run or validate scenario files (YAML, see docs/scenario-format.md).",
        subcommands: [Run.self, Validate.self])

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run scenario files and compare every step with its expected outcome.",
            discussion: "Exits 0 when every step matched, 1 on any mismatch, 2 when a file cannot be read.")

        @Argument(help: "Scenario files or directories (searched for *.yaml / *.yml).")
        var paths: [String]

        @Flag(help: "Print the results as JSON.")
        var json = false

        @Flag(name: .shortAndLong, help: "Also show each step's outcome text for passing steps.")
        var verbose = false

        func run() throws {
            let files: [String]
            do { files = try ScenarioFiles.expand(paths) } catch { throw CLIError(error.description) }
            var results: [ScenarioResult] = []
            var loadErrors: [ScenarioError] = []
            for file in files {
                do {
                    let scenario = try Scenario.load(file: file)
                    results.append(scenario.run())
                } catch {
                    loadErrors.append(error)
                }
            }
            let batch = ScenarioBatchResult(results: results, errors: loadErrors)
            if json {
                print(try batch.jsonString())
            } else {
                print(ReportFormatter.text(batch, verbose: verbose), terminator: "")
            }
            if !loadErrors.isEmpty { throw ExitCode(2) }
            if !batch.passed { throw ExitCode(1) }
        }
    }

    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check scenario files (keys, types, names) without running them.",
            discussion: "Exits 0 when every file is valid, 2 otherwise; errors name the file, line and field.")

        @Argument(help: "Scenario files or directories.")
        var paths: [String]

        @Flag(help: "Print the results as JSON.")
        var json = false

        func run() throws {
            let files: [String]
            do { files = try ScenarioFiles.expand(paths) } catch { throw CLIError(error.description) }
            var errors: [ScenarioError] = []
            var valid: [String] = []
            for file in files {
                do {
                    _ = try Scenario.load(file: file)
                    valid.append(file)
                } catch {
                    errors.append(error)
                }
            }
            if json {
                let batch = ScenarioValidation(valid: valid, errors: errors)
                print(try batch.jsonString())
            } else {
                for f in valid { print("✓ \(f)") }
                for e in errors { print("✗ \(e)") }
                print("\(valid.count) valid, \(errors.count) invalid")
            }
            if !errors.isEmpty { throw ExitCode(2) }
        }
    }
}
