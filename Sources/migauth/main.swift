// migauth: scenarios, diagnosis and a persistent simulated environment, over the Scenario library.
import ArgumentParser
import Foundation

do {
    var command = try MigAuth.parseAsRoot()
    try command.run()
} catch let error as CLIError {
    FileHandle.standardError.write(Data("migauth: \(error.description)\n".utf8))
    exit(2)
} catch {
    MigAuth.exit(withError: error)
}
