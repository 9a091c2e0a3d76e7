import Foundation
import Logging
import QEMU
import Synchronization

/// A VM a host declares: a QEMU guest (what `New-VM` makes) or, without `qemu`, a state file in the
/// host's VM directory (moved whole; storage moves).
public struct VirtualMachineDeclaration: Sendable, Hashable, Codable {
    public var name: String
    /// The guest's hardware; nil: a state file `<vmDirectory>/<name>.vhdx`.
    public var qemu: QEMUMachine?

    public init(name: String, qemu: QEMUMachine? = nil) {
        self.name = name
        self.qemu = qemu
    }
}

/// One VM as the daemon lists it.
public struct VirtualMachineListing: Sendable, Hashable {
    public enum Kind: Sendable, Hashable { case qemu, stateFile }
    public var name: String
    public var kind: Kind
    /// QMP's status of a QEMU guest (`running`, `paused`, `postmigrate`, …; `stopped` when its QEMU is not
    /// running); `registered` for a state file.
    public var status: String
    /// QEMU's pid, for a running guest.
    public var pid: Int32?
}

/// The QEMU guests of one host: the ones its configuration declares (started by the daemon) and the ones
/// that arrived by live migration. Each guest's `QEMUProcess` is owned here; a guest leaves only when it
/// was stopped or has moved away.
public final class QEMUGuests: Sendable {
    public let settings: QEMUHostSettings
    private let logger: Logger
    private let state = Mutex(State())

    private struct State {
        var declared: [String: QEMUMachine] = [:]
        var running: [String: QEMUProcess] = [:]
        /// Guests whose move ended uncertain: paused here, maybe running at the destination.
        var uncertain: Set<String> = []
    }

    public init(settings: QEMUHostSettings, logger: Logger = Logger(label: "QEMUGuests")) {
        self.settings = settings
        self.logger = logger
    }

    /// Starts every declared QEMU guest that is not running yet (each with its QMP socket in the run directory).
    public func start(_ declarations: [VirtualMachineDeclaration]) async throws(MigrationServiceError) {
        for declaration in declarations {
            guard let machine = declaration.qemu else { continue }
            try VMStore.checkName(declaration.name, stage: .source)
            let alreadyRunning = state.withLock { s in
                s.declared[declaration.name] = machine
                return s.running[declaration.name] != nil
            }
            if alreadyRunning { continue }
            let process = try await launch(declaration.name, machine: machine, incoming: false, socketName: declaration.name)
            state.withLock { $0.running[declaration.name] = process }
            logger.info("started QEMU guest \(declaration.name) (pid \(process.pid))")
        }
    }

    /// At start, before any guest is started: takes over the QEMUs that an earlier run of the daemon left
    /// running in the run directory (it was killed, so they were re-parented to init), found by their QMP
    /// sockets (docs/migration-service.md, "Restart after kill -9"):
    /// - a guest's own QEMU (`<name>.qmp`) is adopted; a migration it still had under way is cancelled and the
    ///   guest resumed (the destination never got `commit`); one QEMU finished migrating (`postmigrate`) stays
    ///   paused and is marked uncertain when `journal` has the record of a `commit` sent for it (the destination
    ///   may have resumed it; the daemon's resolver asks it), and is resumed when it has none (`commit` was never
    ///   sent, so the destination never resumed it). Without a journal (nil) it stays paused and uncertain;
    /// - an incoming QEMU (`in-<id>.qmp`) that runs was resumed on `commit`: adopted under its QEMU name; one
    ///   that is paused but whose commit is in `commits` (the daemon died between the record and `cont`) is
    ///   resumed and adopted; one still loading or paused without a record never got `commit` (its source keeps
    ///   or resumes the guest): stopped.
    /// Stale sockets (no QEMU answers) are removed. Returns one line per QEMU found, for the log.
    @discardableResult
    public func reconcile(_ declarations: [VirtualMachineDeclaration], commits: LiveCommitRecords? = nil,
                          journal: LiveMoveJournal? = nil) async -> [String] {
        let directory = settings.runDirectory
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        var declared: [String: QEMUMachine] = [:]
        for d in declarations { if let m = d.qemu { declared[d.name] = m } }
        var report: [String] = []
        for file in files.sorted() where file.hasSuffix(".qmp") {
            let socketName = String(file.dropLast(4))
            let incoming = socketName.hasPrefix("in-")
            guard let process = await QEMUProcess.attach(runDirectory: directory, socketName: socketName,
                                                         machine: incoming ? nil : declared[socketName]) else {
                if incoming { unlink("\(directory)/\(socketName).sock") }
                continue
            }
            var status = (try? await process.status()) ?? "unreachable"
            let name = incoming ? process.name : socketName
            let known = state.withLock { $0.running[name] != nil }
            var line = "adopted QEMU guest \(name) (pid \(process.pid)), \(status)"
            // An incoming guest's stream socket is of no use once it loaded (its daemon may have died before removing it).
            if incoming { unlink("\(directory)/\(socketName).sock") }
            var committedHere = false
            if incoming, status != "running", !known, case let (id, vm)? = commits?.find(prefix: String(socketName.dropFirst(3))),
               vm == name, (try? await process.qmp.execute("query-migrate"))?["status"]?.string == "completed" {
                // Committed here (recorded) but killed before `cont`: the source was, or will be, told "committed".
                committedHere = true
                _ = try? await process.qmp.execute("cont")
                status = (try? await process.status()) ?? "unreachable"
                line += status == "running"
                    ? "; its move (migration \(id)) was committed here before the daemon died, so it was resumed (running)"
                    : "; its move (migration \(id)) was committed here but it could not be resumed (\(status)): it may be the only copy, so it is left for the operator (QMP cont)"
            }
            if incoming && !committedHere && (status != "running" || known || (try? VMStore.checkName(name, stage: .destination)) == nil) {
                await process.stop(grace: .seconds(2))
                unlink("\(directory)/\(socketName).sock")
                unlink(process.logPath)
                report.append("stopped the incoming QEMU of '\(name)' (pid \(process.pid), \(status)) left by an earlier run: its move was never committed here, so its source keeps the guest")
                continue
            }
            if !incoming {
                let migration = (try? await process.qmp.execute("query-migrate"))?["status"]?.string ?? "none"
                if ["setup", "active", "device", "pre-switchover", "wait-unplug", "cancelling"].contains(migration) {
                    // Killed mid-stream: the destination never got `commit`.
                    let after = await LiveStream.resume(process) ?? "unknown"
                    line += "; its interrupted migration was cancelled and the guest resumed (\(after))"
                } else if status == "postmigrate" || status == "finish-migrate" {
                    if let journal, journal.record(of: name) == nil {
                        // The journal is written before `commit` leaves: none, so the destination never resumed it.
                        let after = await LiveStream.resume(process) ?? "unknown"
                        line += "; its migration had completed but its commit was never sent (no record in the journal), so the guest was resumed (\(after))"
                    } else {
                        state.withLock { _ = $0.uncertain.insert(name) }
                        if let record = journal?.record(of: name) {
                            line += "; its last move (migration \(record.migrationID) to \(record.destination)) is uncertain: it stays paused until \(record.destination) tells whether it committed"
                        } else {
                            line += "; its last move is uncertain: it stays paused. Check whether '\(name)' runs on the destination: if it does, stop it here (QMP quit); if it does not, resume it here (QMP cont)"
                        }
                    }
                } else if status == "running", let journal, let record = journal.record(of: name), let path = record.path {
                    // Resumed by hand while its daemon was down: that uncertain move is settled here.
                    journal.remove(path)
                    line += "; it runs, so the record of its uncertain move (migration \(record.migrationID)) was dropped"
                }
            }
            state.withLock { s in
                s.running[name] = process
                s.declared[name] = process.machine
            }
            report.append(line)
        }
        // The daemon's outgoing migration sockets: no move survives the daemon.
        for file in files where file.hasPrefix("out-") && file.hasSuffix(".sock") { unlink("\(directory)/\(file)") }
        for line in report { logger.notice("\(line)") }
        return report
    }

    /// Starts a QEMU for `name` (`incoming`: a destination's `-S -incoming defer`).
    func launch(_ name: String, machine: QEMUMachine, incoming: Bool, socketName: String) async throws(MigrationServiceError) -> QEMUProcess {
        do {
            return try await QEMUProcess.launch(binary: settings.binary, name: name, machine: machine,
                                                runDirectory: settings.runDirectory, socketName: socketName, incoming: incoming)
        } catch {
            throw .failure(.configuration, .unspecifiedFailure, stage: incoming ? .destination : .source,
                           reason: "Could not start the virtual machine '\(name)'", detail: error.description)
        }
    }

    /// The running QEMU of `name`, if any.
    public func process(_ name: String) -> QEMUProcess? { state.withLock { $0.running[name] } }

    /// Whether `name` is a QEMU guest of this host (declared, running, or paused after an uncertain move).
    public func knows(_ name: String) -> Bool {
        state.withLock { $0.declared[name] != nil || $0.running[name] != nil }
    }

    /// Names of guests whose last move ended uncertain (paused here; check the destination).
    public var uncertain: [String] { state.withLock { $0.uncertain.sorted() } }

    /// Every guest with its QMP status.
    public func list() async -> [VirtualMachineListing] {
        let (declared, running) = state.withLock { ($0.declared, $0.running) }
        var out: [VirtualMachineListing] = []
        for name in Set(declared.keys).union(running.keys).sorted() {
            if let process = running[name] {
                let status = (try? await process.status()) ?? (process.isAlive ? "unreachable" : "stopped")
                out.append(VirtualMachineListing(name: name, kind: .qemu, status: status, pid: process.pid))
            } else {
                out.append(VirtualMachineListing(name: name, kind: .qemu, status: "stopped", pid: nil))
            }
        }
        return out
    }

    /// Registers a guest that arrived by live migration (it runs here now).
    func adopt(_ name: String, _ process: QEMUProcess) {
        state.withLock { s in
            s.running[name] = process
            s.declared[name] = process.machine
            s.uncertain.remove(name)
        }
    }

    /// A guest that moved away: it leaves this host's list (its QEMU is stopped by the caller).
    func departed(_ name: String) {
        state.withLock { s in
            s.running[name] = nil
            s.declared[name] = nil
            s.uncertain.remove(name)
        }
    }

    func markUncertain(_ name: String) { _ = state.withLock { $0.uncertain.insert(name) } }

    /// A guest whose uncertain move was resolved (it runs here again).
    func clearUncertain(_ name: String) { _ = state.withLock { $0.uncertain.remove(name) } }

    /// Stops every guest (QMP `quit`, then SIGKILL of its own pid). `keepingUncertain`: a guest whose move ended
    /// uncertain is not stopped (it may be the only copy of the VM: paused here, maybe not running at the
    /// destination); it is logged with its pid and QMP socket and left paused for the operator.
    /// `keepingAdopted`: QEMUs adopted from an earlier run are left running too (a start that failed).
    public func stopAll(keepingUncertain: Bool = false, keepingAdopted: Bool = false) async {
        let (stopping, kept) = state.withLock { s in
            let kept = s.running.filter { (keepingUncertain && s.uncertain.contains($0.key)) || (keepingAdopted && $0.value.adopted) }
            let stopping = s.running.filter { kept[$0.key] == nil }
            s.running = kept
            return (Array(stopping.values), kept)
        }
        for (name, process) in kept.sorted(by: { $0.key < $1.key }) where !process.adopted || state.withLock({ $0.uncertain.contains(name) }) {
            logger.warning("VM \(name): its last move is uncertain, so its QEMU (pid \(process.pid), QMP \(process.qmp.path)) is left paused; check whether it runs on the destination, then quit or resume it")
        }
        for process in stopping { await process.stop() }
    }
}
