import ArgumentParser
import Dispatch
import Foundation
import Logging
import MigrationService
import Synchronization

/// `migauth serve --config host.json`: runs one host's migration daemon (migration and management
/// listeners) until SIGTERM/SIGINT; SIGHUP reloads the configuration file.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run a host's migration daemon (real Kerberos) from a JSON host configuration.",
        discussion: """
        Prints one line `READY migration=ADDR:PORT management=ADDR:PORT` on stdout once both listeners \
        are bound, `RELOADED` after each SIGHUP reload (or \
        `RELOAD-FAILED <reason>`), and `STOPPED` on SIGTERM/SIGINT. Logs go to stderr. See \
        docs/migration-service.md.
        """)

    @Option(help: "The host configuration (JSON).") var config: String
    @Flag(help: "Log at debug level.") var verbose = false

    func run() throws {
        let path = config
        let level: Logger.Level = verbose ? .debug : .notice
        let logger = Logger(label: "migauth.serve", factory: { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        })
        let daemon: HostDaemon
        do throws(MigrationServiceError) {
            daemon = HostDaemon(configuration: try HostConfiguration.load(path), logger: logger)
            try runBlocking { () async throws(MigrationServiceError) in try await daemon.start() }
        } catch {
            fail(error)
        }
        emit(daemon.readyLine)
        let vms = (try? runBlocking { () async throws(MigrationServiceError) in await daemon.virtualMachines() }) ?? []
        for vm in vms {
            logger.notice("VM \(vm.name): \(vm.kind == .qemu ? "QEMU guest" : "state file"), \(vm.status)\(vm.pid.map { " (pid \($0))" } ?? "")")
        }

        let stop = DispatchSemaphore(value: 0)
        let queue = DispatchQueue(label: "migauth.serve.signals")
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGTERM, SIGINT, SIGHUP] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            source.setEventHandler {
                if sig == SIGHUP {
                    do throws(MigrationServiceError) {
                        try runBlocking { () async throws(MigrationServiceError) in try await daemon.reload(fromFile: path) }
                        emit("RELOADED")
                    } catch {
                        emit("RELOAD-FAILED \(error.message.replacingOccurrences(of: "\n", with: " "))")
                    }
                } else {
                    stop.signal()
                }
            }
            source.resume()
            sources.append(source)
        }
        stop.wait()
        runBlocking { await daemon.stop() }
        emit("STOPPED")
        _ = sources
    }
}

/// Prints a machine-readable line on stdout at once.
func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// Prints the error as Hyper-V shows it (then its detail) on stderr and exits with status 1.
func fail(_ error: MigrationServiceError) -> Never {
    var text = error.message + "\n"
    if !error.detail.isEmpty { text += "(\(error.status.symbol): \(error.detail))\n" }
    FileHandle.standardError.write(Data(text.utf8))
    exit(1)
}

/// Runs async work from the synchronous command and waits for it (the command's thread blocks;
/// the work runs on the concurrency pool).
func runBlocking<T: Sendable>(_ body: @escaping @Sendable () async throws(MigrationServiceError) -> T) throws(MigrationServiceError) -> T {
    let result = Mutex<Result<T, MigrationServiceError>?>(nil)
    let done = DispatchSemaphore(value: 0)
    Task {
        let r: Result<T, MigrationServiceError>
        do throws(MigrationServiceError) { r = .success(try await body()) } catch { r = .failure(error) }
        result.withLock { $0 = r }
        done.signal()
    }
    done.wait()
    guard let r = result.withLock({ $0 }) else {
        throw MigrationServiceError(kind: .configuration, status: .unspecifiedFailure, stage: .source, message: "internal error")
    }
    return try r.get()
}

/// `runBlocking` for work that cannot fail.
func runBlocking(_ body: @escaping @Sendable () async -> Void) {
    let done = DispatchSemaphore(value: 0)
    Task {
        await body()
        done.signal()
    }
    done.wait()
}
