import Logging
import Synchronization
import WindowsStatus

extension WindowsStatus {
    /// A move asked of a daemon that is shutting down.
    public static let shutdownInProgress = WindowsStatus(code: 0x8007_045B, symbol: "ERROR_SHUTDOWN_IN_PROGRESS",
                                                         text: "A system shutdown is in progress.")
}

/// Runs one host: its migration listener (destination role; it refuses while migration is disabled) and its
/// management listener (source role), from a `HostConfiguration` that can be reloaded.
public final class HostDaemon: Sendable {
    public let destination: MigrationDestination
    public let management: ManagementService
    /// The host's QEMU guests (nil without `qemu` settings): started at `start`, stopped at `stop`.
    public let guests: QEMUGuests?
    private let state: Mutex<HostConfiguration>
    private let logger: Logger
    /// The resolver of uncertain live moves (asks their destinations; CommitOutcome.swift), while the daemon runs.
    private let resolver = Mutex<Task<Void, Never>?>(nil)

    public init(configuration: HostConfiguration, logger: Logger = Logger(label: "HostDaemon")) {
        state = Mutex(configuration)
        let guests = configuration.qemu.map { QEMUGuests(settings: $0, logger: logger) }
        self.guests = guests
        destination = MigrationDestination(configuration: configuration.destinationConfiguration, logger: logger,
                                           guests: guests)
        management = ManagementService(configuration: configuration, logger: logger, guests: guests)
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
        // Moves whose commit was never confirmed (the daemon died, or the link, in the commit window).
        for move in VMStore(directory: c.vmDirectory).uncertainMoves() {
            logger.warning("uncertain move of '\(move.vm)' (migration \(move.migrationID)): it is not registered here; its state file is kept at \(move.path). Check whether '\(move.vm)' is registered on the destination: if it is, delete the kept file; if it is not, move it back into \(c.vmDirectory)")
        }
        if let guests {
            // QEMUs left running by an earlier run that was killed: adopted (or stopped), never started twice;
            // the commit records (destination) and the journal of commits sent (source) say which ones ran on.
            await guests.reconcile(c.virtualMachines, commits: LiveCommitRecords(vmDirectory: c.vmDirectory),
                                   journal: LiveMoveJournal(vmDirectory: c.vmDirectory))
            do throws(MigrationServiceError) {
                try await guests.start(c.virtualMachines)
            } catch {
                // The ones that did start: a daemon that does not run owns no QEMU. Adopted ones keep running
                // (the next start adopts them again).
                await guests.stopAll(keepingAdopted: true)
                throw error
            }
        }
        destination.offerCredSSP(identity)
        management.offerCredSSP(identity)
        // The migration listener runs also while migration is disabled: like Hyper-V's service it
        // answers "Live migration is not enabled" (rule P3) instead of refusing the connection.
        do throws(MigrationServiceError) {
            try await destination.start(on: ServiceEndpoint(address: c.address, port: c.migrationPort))
        } catch {
            await guests?.stopAll()
            throw error
        }
        do throws(MigrationServiceError) {
            try await management.start(on: ServiceEndpoint(address: c.address, port: c.managementPort))
        } catch {
            await destination.stop()
            await guests?.stopAll()
            throw error
        }
        if let guests {
            // Guests paused in the commit window (adopted so at start, or by a move that ends uncertain later):
            // their destinations are asked until they tell.
            let resolver = OutcomeResolver(configuration: { [weak self] in self?.configuration ?? c }, guests: guests, logger: logger)
            self.resolver.withLock { $0 = Task { await resolver.run() } }
        }
    }

    /// Stops the resolver of uncertain moves (before the guests are stopped) and waits for it.
    private func stopResolver() async {
        let task = resolver.withLock { t in
            defer { t = nil }
            return t
        }
        task?.cancel()
        await task?.value
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

    /// Stops both listeners (a running move finishes or fails: an outgoing live guest that has not been
    /// let go runs here again, an incoming one is discarded), wipes the credentials of open CredSSP sign-ons,
    /// then stops the host's QEMU guests (QMP `quit`, then SIGKILL of their own pids).
    public func stop() async {
        await stopResolver()
        await management.stop()
        await destination.stop()
        await guests?.stopAll()
    }

    /// Graceful shutdown (what `migauth serve` does on SIGTERM/SIGINT; docs/migration-service.md, "Stopping a
    /// daemon"): both listeners stop accepting; incoming moves are aborted at once (their guests run on at their
    /// sources: this host would stop them right after); outgoing moves may finish for `grace`, then the ones
    /// still under way are aborted (a guest not yet let go runs here again; one in the commit window stays
    /// paused and uncertain); then the host's QEMU guests are stopped, except the uncertain ones, which stay
    /// paused for the operator (logged with their pid and QMP socket). Returns whether every outgoing move
    /// ended within `grace`.
    @discardableResult
    public func shutdown(grace: Duration) async -> Bool {
        let deadline = ContinuousClock.now + grace
        await management.stopAccepting()
        await destination.stop()
        let finished = await management.waitForMoves(until: deadline)
        if !finished {
            logger.warning("\(management.movesUnderWay) move(s) still under way after \(grace): aborting them")
        }
        await management.stop(abortingMoves: true)
        // An uncertain guest not resolved by now stays paused (below); the next start asks again.
        await stopResolver()
        if let guests {
            for vm in await guests.list() where vm.kind == .qemu {
                logger.notice("stopping VM \(vm.name): QEMU guest, \(vm.status)\(vm.pid.map { " (pid \($0))" } ?? "")")
            }
            await guests.stopAll(keepingUncertain: true)
        }
        return finished
    }

    /// The host's VMs: its QEMU guests with their QMP status, and its registered state files.
    public func virtualMachines() async -> [VirtualMachineListing] {
        let qemu = await guests?.list() ?? []
        let files = VMStore(directory: configuration.vmDirectory).list().map {
            VirtualMachineListing(name: $0, kind: .stateFile, status: "registered", pid: nil)
        }
        return qemu + files
    }
}
