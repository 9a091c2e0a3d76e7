import ArgumentParser
import Foundation
import Directory
import Hosts
import MigrationRules
import MigrationService
import RealScenario
import Scenario

/// `migauth scenario run|validate`.
struct ScenarioCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scenario",
        abstract: "Run or validate scenario files (YAML, see docs/scenario-format.md).",
        subcommands: [Run.self, Validate.self, Probe.self])

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run scenario files and compare every step with its expected outcome.",
            discussion: "Exits 0 when every step matched, 1 on any mismatch, 2 when a file cannot be read.")

        @Argument(help: "Scenario files or directories (searched for *.yaml / *.yml).")
        var paths: [String]

        @Flag(help: "Print the results as JSON.")
        var json = false

        @Flag(name: .shortAndLong, help: "Also show each step's outcome text for passing steps.")
        var verbose = false

        @Flag(help: "Also run each scenario against a real MIT KDC and real processes, and compare (docs/real-scenarios.md).")
        var real = false

        func run() async throws {
            let files: [String]
            do { files = try ScenarioFiles.expand(paths) } catch { throw CLIError(error.description) }
            if real { return try await runReal(files) }
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

        /// Runs each scenario with ``RealScenarioRunner`` and prints SIM vs REAL per step.
        func runReal(_ files: [String]) async throws {
            var loadErrors: [ScenarioError] = []
            var scenarios: [Scenario] = []
            for file in files {
                do { scenarios.append(try Scenario.load(file: file)) } catch { loadErrors.append(error) }
            }
            for stale in RealScenarioRunner.prepareProcess() {
                FileHandle.standardError.write(Data("removed \(stale): left by an earlier real run that was killed\n".utf8))
            }
            let runner = RealScenarioRunner(executable: Self.currentExecutable())
            var reports: [RealScenarioReport] = []
            for s in scenarios { reports.append(await runner.run(s)) }
            let batch = RealBatchReport(scenarios: reports)
            if json { print(try batch.jsonString()) } else { print(batch.text(verbose: verbose), terminator: "") }
            for e in loadErrors { FileHandle.standardError.write(Data("✗ \(e)\n".utf8)) }
            if !loadErrors.isEmpty { throw ExitCode(2) }
            if !batch.passed { throw ExitCode(1) }
        }

        /// This program's path (`/proc/self/exe` resolved), spawned for probes.
        static func currentExecutable() -> String {
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        }
    }

    /// `migauth scenario probe JSON` — one real Kerberos exchange of a move (used by `run --real`).
    struct Probe: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the Kerberos exchange of one real move (internal: used by `scenario run --real`).",
            shouldDisplay: false)

        @Argument(help: "The probe as JSON (KerberosDelegationProbe).")
        var specification: String

        func run() throws {
            let probe: KerberosDelegationProbe
            do { probe = try JSONDecoder().decode(KerberosDelegationProbe.self, from: Data(specification.utf8)) } catch {
                throw CLIError("invalid probe: \(error)")
            }
            print(String(decoding: try JSONEncoder().encode(probe.run()), as: UTF8.self))
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

