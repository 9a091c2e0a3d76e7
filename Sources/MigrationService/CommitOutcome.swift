import Foundation
import GSS
import Logging
import MigrationVocabulary
import Synchronization
import WindowsStatus
#if canImport(Glibc)
import Glibc
#endif

// The commit window of a live move, closed (docs/migration-service.md, "The commit window after kill -9"):
// the destination records durably that it committed a move before it resumes the guest; the source
// records durably where it sent `commit` before it sends it; a source that never saw `committed` asks the
// destination (protocol version 3, purpose 3) and resumes or quits its paused guest by the answer.

extension MigrationID {
    /// Parses 32 hex digits (``description``'s form); nil otherwise.
    init?(hex: String) {
        let digits = Array(hex.utf8)
        guard digits.count == 32 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16)
        for i in stride(from: 0, to: 32, by: 2) {
            guard let byte = UInt8(String(decoding: digits[i..<(i + 2)], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(byte)
        }
        self.init(bytes: bytes)
    }
}

/// Writes `data` to `path` durably and atomically: a temporary file in the same directory, fsync, rename,
/// fsync of the directory. False when any step fails (nothing is left under `path` then, or the old file).
func writeDurably(_ data: [UInt8], to path: String) -> Bool {
    let directory = (path as NSString).deletingLastPathComponent
    let temporary = "\(directory)/.tmp-\(MigrationID.random().description.prefix(12))"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
    guard fd >= 0 else { return false }
    let written = data.withUnsafeBytes { raw -> Bool in
        var done = 0
        while done < raw.count {
            guard let base = raw.baseAddress else { return false }
            let n = write(fd, base + done, raw.count - done)
            if n <= 0 { return false }
            done += n
        }
        return true
    }
    let synced = written && fsync(fd) == 0
    close(fd)
    guard synced, rename(temporary, path) == 0 else {
        unlink(temporary)
        return false
    }
    syncDirectory(directory)
    return true
}

/// Destination: the live moves it committed, one file per migration, `<vmDirectory>/.commits/<migration id>`
/// holding the VM's name. A record is written (and fsynced) before the guest is resumed on `commit`, and
/// removed only if resuming failed; so "recorded" means "the guest was resumed here" — what the destination
/// answers an outcome query with, also after a restart. Records older than ``retention`` go at start.
public struct LiveCommitRecords: Sendable, Hashable {
    public let directory: String
    /// How long a record is kept (a source has that long to ask).
    public static let retention: TimeInterval = 30 * 24 * 3600

    public init(vmDirectory: String) { directory = vmDirectory + "/.commits" }

    private func path(_ id: MigrationID) -> String { "\(directory)/\(id)" }

    func record(_ id: MigrationID, vm: String, stage: MigrationStage) throws(MigrationServiceError) {
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                 attributes: [.posixPermissions: 0o700])
        guard writeDurably(Array(vm.utf8), to: path(id)) else {
            throw .failure(.storage, .unspecifiedFailure, stage: stage, reason: "Could not record the commit of '\(vm)'",
                           detail: String(cString: strerror(errno)))
        }
    }

    func remove(_ id: MigrationID) {
        unlink(path(id))
        syncDirectory(directory)
    }

    /// The VM committed under `id`, if any.
    public func vm(of id: MigrationID) -> String? {
        FileManager.default.contents(atPath: path(id)).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The record whose migration id starts with `prefix` (an incoming QEMU's socket name carries the first 12
    /// hex digits): its id and VM.
    func find(prefix: String) -> (MigrationID, String)? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in names where name.hasPrefix(prefix) {
            if let id = MigrationID(hex: name), let vm = vm(of: id) { return (id, vm) }
        }
        return nil
    }

    /// Removes records older than ``retention`` (and temporary files left by a crash).
    func prune(now: Date = Date()) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in names {
            let file = "\(directory)/\(name)"
            if name.hasPrefix(".tmp-") {
                unlink(file)
                continue
            }
            let modified = (try? FileManager.default.attributesOfItem(atPath: file)[.modificationDate]) as? Date
            if let modified, now.timeIntervalSince(modified) > Self.retention { unlink(file) }
        }
    }
}

/// Source: where a live move sent (or was about to send) `commit`, written durably before the first byte of
/// `commit` leaves and removed once the outcome is known (`committed`, an `error` answer, or an outcome query).
/// `<vmDirectory>/.outgoing/<vm>.<migration id>.live` (JSON). A guest paused in `postmigrate` with such a record
/// is uncertain; one without never had its `commit` sent, so its destination never resumed it.
public struct LiveMoveRecord: Sendable, Hashable, Codable {
    public var vm: String
    public var migrationID: String
    /// The destination as the move named it: FQDN, the endpoint connected to, the SPN's realm.
    public var destination: String
    public var address: String
    public var port: Int
    public var realm: String?
    /// The file, once read from disk (not stored in it).
    public var path: String?

    private enum CodingKeys: String, CodingKey { case vm, migrationID, destination, address, port, realm }

    var target: MigrationTarget {
        get throws(MigrationServiceError) {
            MigrationTarget(fqdn: destination, endpoint: try ServiceEndpoint(address: address, port: port), realm: realm)
        }
    }
}

public struct LiveMoveJournal: Sendable, Hashable {
    public let directory: String

    public init(vmDirectory: String) { directory = vmDirectory + "/.outgoing" }

    static let suffix = ".live"

    func path(vm: String, id: MigrationID) -> String { "\(directory)/\(vm).\(id)\(Self.suffix)" }

    /// Writes the record of a commit about to be sent; returns its path. Older records of the VM go first: the
    /// guest runs here and is being moved, so they describe nothing any more (one record per VM).
    func write(vm: String, id: MigrationID, to target: MigrationTarget) throws(MigrationServiceError) -> String {
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for stale in records() where stale.vm == vm { if let path = stale.path { unlink(path) } }
        let record = LiveMoveRecord(vm: vm, migrationID: id.description, destination: target.fqdn,
                                    address: target.endpoint.address, port: target.endpoint.port, realm: target.realm)
        let file = path(vm: vm, id: id)
        guard let data = try? JSONEncoder().encode(record), writeDurably(Array(data), to: file) else {
            throw .failure(.storage, .unspecifiedFailure, stage: .source, reason: "Could not record the commit of '\(vm)'",
                           detail: String(cString: strerror(errno)))
        }
        return file
    }

    /// Every record (unreadable ones are skipped), sorted by file name.
    public func records() -> [LiveMoveRecord] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.sorted().filter { $0.hasSuffix(Self.suffix) && !$0.hasPrefix(".") }.compactMap { name in
            let file = "\(directory)/\(name)"
            guard let data = FileManager.default.contents(atPath: file),
                  var record = try? JSONDecoder().decode(LiveMoveRecord.self, from: data) else { return nil }
            record.path = file
            return record
        }
    }

    /// The record of `vm`'s last move, if any.
    public func record(of vm: String) -> LiveMoveRecord? { records().first { $0.vm == vm } }

    func remove(_ path: String) {
        unlink(path)
        syncDirectory(directory)
    }
}

// MARK: Destination: the commit gate and the answer

/// A live move a destination is receiving: until `commit`, an outcome query ends it (``fenced``); from `commit` on
/// (``deciding``) a query waits until the guest runs here (recorded) or the move failed (not recorded).
struct LiveCommitGate: Sendable {
    var deciding = false
    let close: (@Sendable () -> Void)?
}

extension WindowsStatus {
    /// `ERROR_CANCELLED`: a live move ended by its source's outcome query before its `commit`.
    static let cancelled = WindowsStatus(code: 0x8007_04C7, symbol: "ERROR_CANCELLED",
                                         text: "The operation was canceled by the user.")
}

extension MigrationDestination {
    /// How long an outcome query waits for a commit under way to settle.
    static let outcomeSettleTimeout: Duration = .seconds(60)

    /// Whether `principal` may ask outcomes: a user P1 allows, or a host of the destination's realm (`host/…@REALM`:
    /// a source daemon asks with its own keys, having no user's credential after a restart).
    static func mayAskOutcome(_ principal: String, configuration: DestinationConfiguration) -> Bool {
        if configuration.allows(principal) { return true }
        guard let realm = configuration.realm, principal.hasPrefix("host/"), principal.hasSuffix("@\(realm)") else { return false }
        return principal.count > "host/".count + realm.count + 1
    }

    /// Purpose 3 after authentication: authorizes, answers one `outcomeQuery`, and closes.
    func answerOutcome(_ conn: FrameConnection, principal: String, configuration: DestinationConfiguration) async {
        do throws(MigrationServiceError) {
            guard Self.mayAskOutcome(principal, configuration: configuration) else {
                throw MigrationServiceError(kind: .authorization, status: .accessDenied, stage: .destination,
                                            message: MigrationMessages.permissionDenied(user: configuration.displayName(of: principal),
                                                                                        host: configuration.hostName, stage: .destination),
                                            detail: "an outcome query needs an allowed user (rule P1) or a host of the realm")
            }
            try await conn.send(.authResult(principal: principal, server: configuration.fqdn))
            guard case .outcomeQuery(let id, let vm) = try await conn.receive() else {
                throw MigrationServiceError.protocolViolation("expected an outcome query", stage: .destination)
            }
            let outcome = try await outcome(of: id, vm: vm, records: LiveCommitRecords(vmDirectory: configuration.vmDirectory))
            logger.notice("outcome query from \(principal) for '\(PeerText.forLog(vm))' (migration \(id)): \(outcome == .committed ? "committed here" : "not committed here")")
            try await conn.send(.outcome(outcome))
        } catch {
            logger.info("outcome query failed: \(PeerText.forLog("\(error)"))")
            await conn.sendError(error)
        }
    }

    /// The outcome of the live move `id`: a move still waiting for `commit` is fenced (its `commit` will be refused)
    /// and its connection closed, so "not committed" stays true; a commit under way is waited for.
    func outcome(of id: MigrationID, vm: String, records: LiveCommitRecords) async throws(MigrationServiceError) -> CommitOutcome {
        let clock = ContinuousClock()
        let deadline = clock.now + Self.outcomeSettleTimeout
        while true {
            enum Step { case wait, fenced((@Sendable () -> Void)?), settled }
            let step: Step = state.withLock { s in
                guard let gate = s.liveGates[id] else { return .settled }
                if gate.deciding { return .wait }
                s.fenced.insert(id)
                return .fenced(gate.close)
            }
            switch step {
            case .settled:
                guard let committed = records.vm(of: id) else { return .notCommitted }
                guard committed == vm else {
                    throw MigrationServiceError.protocolViolation("migration \(id) moved another virtual machine", stage: .destination)
                }
                return .committed
            case .fenced(let close):
                close?()
                return .notCommitted
            case .wait:
                guard clock.now < deadline else {
                    throw MigrationServiceError.failure(.uncertain, .connectionTimedOut, stage: .destination,
                                                        reason: "The commit of '\(vm)' is still under way",
                                                        detail: "ask again later")
                }
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
    }
}

// MARK: Source: the query and the resolver

extension MigrationSource {
    /// Asks the destination of `record` what became of that move (protocol version 3, purpose 3), authenticating
    /// with `credential` (the source host's own, `host/<fqdn>`). Throws when it cannot tell (unreachable, an older
    /// destination that refuses purpose 3, a commit still under way there).
    static func queryOutcome(_ record: LiveMoveRecord, from localAddress: String, credential: GSSCredential?,
                             suites: [ProtectionSuite]) async throws(MigrationServiceError) -> CommitOutcome {
        guard let id = MigrationID(hex: record.migrationID) else {
            throw .protocolViolation("bad migration id \(record.migrationID) in \(record.path ?? "the journal")", stage: .source)
        }
        let target = try record.target
        let name = try target.targetName()
        return try await connect(from: localAddress, to: target) { conn throws(MigrationServiceError) in
            conn.settings = ProtocolSettings(versions: WireProtocol.outcomeVersion...WireProtocol.outcomeVersion, suites: suites)
            _ = try await KerberosHandshake.client(conn, purpose: .outcome, target: name, credential: credential,
                                                   destinationName: target.fqdn)
            try await conn.send(.outcomeQuery(id: id, vm: record.vm))
            guard case .outcome(let outcome) = try await conn.receive() else {
                throw MigrationServiceError.protocolViolation("expected the outcome", stage: .source)
            }
            return outcome
        }
    }
}

/// A source daemon's resolution of its uncertain live moves: for each guest paused in the commit window (marked
/// uncertain, with a ``LiveMoveRecord``), it asks the destination with the host's own Kerberos credential; on
/// "committed" the paused QEMU here is quit (the guest runs there), on "not committed" it is resumed here. A
/// destination that cannot answer is asked again later (1 s, doubling to 30 s). Nothing else is ever resumed.
final class OutcomeResolver: Sendable {
    private let configuration: @Sendable () -> HostConfiguration
    private let guests: QEMUGuests
    private let logger: Logger
    private let attempts = Mutex<[String: (count: Int, next: ContinuousClock.Instant)]>([:])
    static let longestWait: Duration = .seconds(30)
    /// How long one question may take (a destination that accepts and never answers must not hold the resolver).
    static let queryTimeout: Duration = .seconds(30)

    /// `body`'s result, or a timeout error once `limit` passed (`body` is cancelled then: its connection closes).
    static func withTimeout<T: Sendable>(_ limit: Duration,
                                         _ body: @escaping @Sendable () async throws(MigrationServiceError) -> T) async throws(MigrationServiceError) -> T {
        let result = await withTaskGroup(of: Result<T, MigrationServiceError>?.self) { group in
            group.addTask {
                do throws(MigrationServiceError) { return .success(try await body()) } catch { return .failure(error) }
            }
            group.addTask {
                try? await Task.sleep(for: limit)
                return nil
            }
            defer { group.cancelAll() }
            return await group.next() ?? nil
        }
        guard let result else {
            throw .failure(.connection, .connectionTimedOut, stage: .source, reason: "The destination did not answer",
                           detail: "no outcome within \(limit)")
        }
        return try result.get()
    }

    init(configuration: @escaping @Sendable () -> HostConfiguration, guests: QEMUGuests, logger: Logger) {
        self.configuration = configuration
        self.guests = guests
        self.logger = logger
    }

    /// Until cancelled: looks for uncertain guests every second.
    func run() async {
        while !Task.isCancelled {
            await resolveDue()
            try? await Task.sleep(for: .seconds(1))
        }
    }

    /// Tries each uncertain guest whose next attempt is due.
    func resolveDue() async {
        let c = configuration()
        let journal = LiveMoveJournal(vmDirectory: c.vmDirectory)
        let uncertain = Set(guests.uncertain)
        let now = ContinuousClock.now
        for record in journal.records() where uncertain.contains(record.vm) {
            guard let path = record.path else { continue }
            let due = attempts.withLock { ($0[path]?.next ?? now) <= now }
            guard due, !Task.isCancelled else { continue }
            if await resolve(record, configuration: c, journal: journal) {
                _ = attempts.withLock { $0.removeValue(forKey: path) }
            } else {
                attempts.withLock { a in
                    let count = (a[path]?.count ?? 0) + 1
                    let wait = min(Duration.seconds(1 << min(count - 1, 5)), Self.longestWait)
                    a[path] = (count, ContinuousClock.now + wait)
                }
            }
        }
    }

    /// One attempt; true when the move is resolved (its record removed).
    private func resolve(_ record: LiveMoveRecord, configuration c: HostConfiguration, journal: LiveMoveJournal) async -> Bool {
        guard let path = record.path else { return false }
        let vm = record.vm
        // No move of the guest meanwhile (a paused guest cannot be moved anyway: P3).
        guard let lock = try? VMMoveLock.acquire(vm, in: VMStore(directory: c.vmDirectory), host: c.name) else { return false }
        defer { lock.release() }
        guard let process = guests.process(vm), process.isAlive else {
            logger.warning("uncertain move of '\(vm)' (migration \(record.migrationID)): its QEMU is gone here; record removed")
            guests.clearUncertain(vm)
            journal.remove(path)
            return true
        }
        let status = (try? await process.status()) ?? "unreachable"
        guard status == "postmigrate" || status == "paused" || status == "finish-migrate" else {
            // Someone resumed it (the operator, following the uncertain error): not this resolver's to change.
            logger.warning("uncertain move of '\(vm)' (migration \(record.migrationID)): its QEMU here is \(status), not paused: left as it is; record removed")
            if status == "running" { guests.clearUncertain(vm) }
            journal.remove(path)
            return status == "running"
        }
        let outcome: CommitOutcome
        do throws(MigrationServiceError) {
            let principal = MigrationServiceNames.hostPrincipal(fqdn: c.fqdn, realm: c.realm)
            let credential: GSSCredential
            do {
                // A ccache read, and with the client keytab maybe an AS exchange: on GSS's blocking pool.
                credential = try await GSSCredential.acquire(
                    name: GSSName(principal: principal), usage: .initiate,
                    from: GSSCredentialStore(ccache: "FILE:\(c.ccacheDirectory)/host-\(c.fqdn).ccache",
                                             clientKeytab: c.clientKeytab ?? c.keytab))
            } catch {
                throw MigrationServiceError.credentialUnavailable(error, destination: record.destination)
            }
            outcome = try await Self.withTimeout(Self.queryTimeout) { () async throws(MigrationServiceError) -> CommitOutcome in
                try await MigrationSource.queryOutcome(record, from: c.address, credential: credential, suites: c.protection.suites)
            }
        } catch {
            let attempt = attempts.withLock { $0[path]?.count ?? 0 }
            logger.log(level: attempt == 0 ? .warning : .debug,
                       "uncertain move of '\(vm)' (migration \(record.migrationID)): \(record.destination) could not tell its outcome yet (\(error.message) \(error.detail)); asking again later")
            return false
        }
        switch outcome {
        case .committed:
            guests.departed(vm)
            await Task { await process.stop() }.value
            journal.remove(path)
            logger.notice("uncertain move of '\(vm)' (migration \(record.migrationID)) resolved: committed on \(record.destination), where the guest runs; its paused QEMU here (pid \(process.pid)) was quit")
            return true
        case .notCommitted:
            let after = await Task { await LiveStream.resume(process) }.value ?? "unknown"
            guard after == "running" else {
                logger.warning("uncertain move of '\(vm)' (migration \(record.migrationID)): not committed on \(record.destination), but resuming it here left it \(after); asking again later")
                return false
            }
            guests.clearUncertain(vm)
            journal.remove(path)
            logger.notice("uncertain move of '\(vm)' (migration \(record.migrationID)) resolved: never committed on \(record.destination); the guest was resumed here (\(after))")
            return true
        }
    }
}
