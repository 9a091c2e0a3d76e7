// migauth: scenarios, diagnosis and a persistent simulated environment, over the Scenario library.
import ArgumentParser
import Foundation

do {
    var command = try MigAuth.parseAsRoot()
    if var daemon = command as? AsyncParsableCommand {
        try await runAsync(&daemon)  // `serve` (swift-service-lifecycle's ServiceGroup), `migrate`, `scenario run`
    } else {
        try command.run()
    }
} catch let error as CLIError {
    FileHandle.standardError.write(Data("migauth: \(error.description)\n".utf8))
    exit(2)
} catch {
    MigAuth.exit(withError: error)
}

/// Runs an async command's `run() async` (in an async function, so that the async overload is the one chosen).
func runAsync(_ command: inout any AsyncParsableCommand) async throws {
    try await command.run()
}
