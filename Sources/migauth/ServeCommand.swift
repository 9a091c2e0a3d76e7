import ArgumentParser
import Foundation
import Logging
import MigrationService
import ServiceLifecycle
import Synchronization
import UnixSignals

/// `migauth serve --config host.json`: runs one host's migration daemon (migration and management
/// listeners) as a swift-service-lifecycle service until SIGTERM/SIGINT (graceful shutdown); SIGHUP
/// reloads the configuration file.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run a host's migration daemon (real Kerberos) from a JSON host configuration.",
        discussion: """
        Prints one line `READY migration=ADDR:PORT management=ADDR:PORT` on stdout once both listeners \
        are bound, `RELOADED` after each SIGHUP reload (or `RELOAD-FAILED <reason>`), `STOPPING` when \
        SIGTERM/SIGINT arrives and `STOPPED` once it has shut down: listeners closed, incoming moves \
        aborted (their guests run on at their sources), outgoing moves finished or, after \
        --shutdown-grace seconds, aborted, QEMU guests stopped. Logs go to stderr. See \
        docs/migration-service.md.
        """)

    @Option(help: "The host configuration (JSON).") var config: String
    @Option(help: "Seconds that outgoing moves may take to finish after SIGTERM/SIGINT before they are aborted.")
    var shutdownGrace: Double = 60
    @Flag(help: "Log at debug level.") var verbose = false

    func validate() throws {
        guard shutdownGrace >= 0, shutdownGrace <= 86_400 else {
            throw ValidationError("--shutdown-grace must be within 0…86400 seconds")
        }
    }

    func run() async throws {
        let level: Logger.Level = verbose ? .debug : .notice
        let logger = Logger(label: "migauth.serve", factory: { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        })
        let configuration: HostConfiguration
        do throws(MigrationServiceError) {
            configuration = try HostConfiguration.load(config)
        } catch {
            fail(error)
        }
        let service = DaemonService(daemon: HostDaemon(configuration: configuration, logger: logger), path: config,
                                    grace: .milliseconds(Int64(shutdownGrace * 1000)), logger: logger)
        let group = ServiceGroup(services: [service], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }
}

/// The daemon as a service: starts it (or exits 1 with the error), reloads on SIGHUP, and on graceful
/// shutdown runs `HostDaemon.shutdown(grace:)`.
struct DaemonService: Service {
    let daemon: HostDaemon
    let path: String
    let grace: Duration
    let logger: Logger

    func run() async throws {
        // Trapped before READY, so a SIGHUP right after it is a reload and not the default action.
        let reloads = await UnixSignalsSequence(trapping: .sighup)
        do throws(MigrationServiceError) {
            try await daemon.start()
        } catch {
            fail(error)
        }
        emit(daemon.readyLine)
        for vm in await daemon.virtualMachines() {
            logger.notice("VM \(vm.name): \(vm.kind == .qemu ? "QEMU guest" : "state file"), \(vm.status)\(vm.pid.map { " (pid \($0))" } ?? "")")
        }
        // Until SIGTERM/SIGINT: the sequence ends on graceful shutdown.
        for await _ in reloads.cancelOnGracefulShutdown() {
            do throws(MigrationServiceError) {
                try await daemon.reload(fromFile: path)
                emit("RELOADED")
            } catch {
                emit("RELOAD-FAILED \(error.message.replacingOccurrences(of: "\n", with: " "))")
            }
        }
        emit("STOPPING")
        if !(await daemon.shutdown(grace: grace)) {
            logger.warning("outgoing moves were aborted after the shutdown grace of \(grace)")
        }
        emit("STOPPED")
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
