import Logging
import Synchronization

/// Runs one host: its migration listener (destination role; it refuses while migration is disabled) and its
/// management listener (source role), from a `HostConfiguration` that can be reloaded.
public final class HostDaemon: Sendable {
    public let destination: MigrationDestination
    public let management: ManagementService
    private let state: Mutex<HostConfiguration>
    private let logger: Logger

    public init(configuration: HostConfiguration, logger: Logger = Logger(label: "HostDaemon")) {
        state = Mutex(configuration)
        destination = MigrationDestination(configuration: configuration.destinationConfiguration, logger: logger)
        management = ManagementService(configuration: configuration, logger: logger)
        self.logger = logger
    }

    public var configuration: HostConfiguration { state.withLock { $0 } }

    /// Starts both listeners on the configured address and ports (0: ephemeral).
    public func start() async throws(MigrationServiceError) {
        let c = configuration
        try c.validate()
        // A missing keytab, or one without the service principals: refuse to start (no READY).
        for problem in try await c.checkKeytab() { logger.warning("\(problem)") }
        let identity = try await ServiceTLSIdentity.forHost(c)
        destination.offerCredSSP(identity)
        management.offerCredSSP(identity)
        // The migration listener runs also while migration is disabled: like Hyper-V's service it
        // answers "Live migration is not enabled" (rule P3) instead of refusing the connection.
        try await destination.start(on: ServiceEndpoint(address: c.address, port: c.migrationPort))
        do throws(MigrationServiceError) {
            try await management.start(on: ServiceEndpoint(address: c.address, port: c.managementPort))
        } catch {
            await destination.stop()
            throw error
        }
    }

    /// `READY migration=127.0.0.12:41234 management=127.0.0.12:41235`.
    public var readyLine: String {
        "READY migration=\(destination.endpoint?.description ?? "-") management=\(management.endpoint?.description ?? "-")"
    }

    /// Applies a new configuration: P1, N1, N2, P3 (migration enabled), performance option and
    /// hosts table at once. Address, name and ports of running listeners stay.
    public func reload(_ configuration: HostConfiguration) async throws(MigrationServiceError) {
        try configuration.validate()
        state.withLock { $0 = configuration }
        await destination.update(configuration.destinationConfiguration)
        management.update(configuration)
        logger.info("configuration reloaded")
    }

    /// Reloads from a JSON file.
    public func reload(fromFile path: String) async throws(MigrationServiceError) {
        try await reload(HostConfiguration.load(path))
    }

    /// Stops both listeners; the credentials of open CredSSP sign-ons are wiped.
    public func stop() async {
        await management.stop()
        await destination.stop()
    }
}
