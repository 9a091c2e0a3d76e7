import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One QEMU process this daemon started, and its QMP monitor. The value owns the child: only it
/// signals or reaps that pid (never a broad kill), and `stop()` ends it (QMP `quit`, then SIGKILL
/// of this pid if it does not exit in time).
public final class QEMUProcess: Sendable {
    /// The guest's name (`-name`).
    public let name: String
    public let pid: pid_t
    public let qmp: QMPClient
    /// QEMU's stdout and stderr.
    public let logPath: String
    public let machine: QEMUMachine
    /// A QEMU that an earlier run of the daemon started (``attach(runDirectory:socketName:machine:)``): not this
    /// process's child, so it is watched through `/proc` instead of reaped.
    public let adopted: Bool
    private let exit = Mutex<Int32?>(nil)

    private init(name: String, pid: pid_t, qmp: QMPClient, logPath: String, machine: QEMUMachine, adopted: Bool = false) {
        self.name = name
        self.pid = pid
        self.qmp = qmp
        self.logPath = logPath
        self.machine = machine
        self.adopted = adopted
    }

    /// The QEMU that an earlier run of this daemon started with its monitor on `<runDirectory>/<socketName>.qmp`
    /// and left running (the daemon was killed): connects to that socket and finds its pid (the one live
    /// process whose command line has exactly that monitor). nil when no QEMU answers there; a stale socket
    /// file is then removed. `machine` nil: the memory is asked of QEMU (`query-memory-size-summary`), the
    /// name too (`query-name`).
    public static func attach(runDirectory: String, socketName: String, machine: QEMUMachine?) async -> QEMUProcess? {
        let qmpPath = "\(runDirectory)/\(socketName).qmp"
        guard let qmp = try? await QMPClient.connect(path: qmpPath) else {
            unlink(qmpPath)
            return nil
        }
        let pids = monitorOwners(qmpPath)
        guard pids.count == 1, let pid = pids.first else {
            qmp.close()
            return nil
        }
        var name = socketName
        if let reply = try? await qmp.execute("query-name"), let n = reply["name"]?.string { name = n }
        var found = machine ?? QEMUMachine(memoryMiB: 0)
        if machine == nil, let reply = try? await qmp.execute("query-memory-size-summary"),
           let bytes = reply["base-memory"]?.uint64, bytes > 0, bytes < 1 << 50 {
            found.memoryMiB = Int(bytes >> 20)
        }
        return QEMUProcess(name: name, pid: pid, qmp: qmp, logPath: "\(runDirectory)/\(socketName).log", machine: found,
                           adopted: true)
    }

    /// Live processes whose command line has `-qmp unix:<qmpPath>,server=on,…` (as `launch` starts them).
    private static func monitorOwners(_ qmpPath: String) -> [pid_t] {
        let needle = "unix:\(qmpPath),server=on"
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { pid in
            commandLine(of: pid)?.contains { $0.hasPrefix(needle) } == true && !isZombie(pid)
        }
    }

    private static func commandLine(of pid: pid_t) -> [String]? {
        guard let raw = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"), !raw.isEmpty else { return nil }
        return raw.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    private static func isZombie(_ pid: pid_t) -> Bool {
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        guard let close = stat.lastIndex(of: ")") else { return true }
        return stat[close...].hasPrefix(") Z") || stat[close...].hasPrefix(") X")
    }

    /// Starts QEMU for `machine` with its monitor on `<runDirectory>/<socketName>.qmp`. `incoming`:
    /// a destination's QEMU (`-S -incoming defer`: it waits for `migrate-incoming` and stays paused
    /// after the migration until `cont`). Returns once QMP answers (at most `timeout`).
    public static func launch(binary: String, name: String, machine: QEMUMachine, runDirectory: String,
                              socketName: String, incoming: Bool,
                              timeout: Duration = .seconds(20)) async throws(QEMUError) -> QEMUProcess {
        if let problem = machine.problem { throw QEMUError(.launch, problem) }
        do {
            try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw QEMUError(.launch, "cannot create \(runDirectory): \(error)")
        }
        let qmpPath = "\(runDirectory)/\(socketName).qmp"
        let logPath = "\(runDirectory)/\(socketName).log"
        unlink(qmpPath)
        var arguments = [binary, "-nodefaults", "-no-user-config", "-name", name,
                         "-machine", "\(machine.machine),accel=\(machine.accel)", "-m", "\(machine.memoryMiB)M",
                         "-display", "none", "-qmp", "unix:\(qmpPath),server=on,wait=off"]
        if incoming { arguments += ["-S", "-incoming", "defer"] }
        arguments += machine.extraArguments
        let pid = try spawn(arguments, log: logPath)
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var lastError = QEMUError(.launch, "QEMU did not open its monitor")
        while clock.now < deadline {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
                throw QEMUError(.launch, "\(binary) exited (status \(status)): \(log.suffix(600))")
            }
            if access(qmpPath, F_OK) == 0 {
                do throws(QEMUError) {
                    let qmp = try await QMPClient.connect(path: qmpPath)
                    return QEMUProcess(name: name, pid: pid, qmp: qmp, logPath: logPath, machine: machine)
                } catch {
                    lastError = error
                }
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        let child = QEMUProcess(name: name, pid: pid, qmp: QMPClient.unconnected(path: qmpPath), logPath: logPath,
                                machine: machine)
        await child.kill()
        throw lastError
    }

    /// `query-status`: `running`, `paused`, `postmigrate`, `inmigrate`, `prelaunch`, …
    public func status() async throws(QEMUError) -> String {
        let reply = try await qmp.execute("query-status")
        guard let status = reply["status"]?.string else { throw QEMUError(.malformed, "query-status: \(reply)") }
        return status
    }

    /// Whether the process is still alive (reaps it if it has exited).
    public var isAlive: Bool { reap() == nil }

    /// The exit status once the process has ended (reaped here, once), or nil while it runs.
    @discardableResult
    private func reap() -> Int32? {
        exit.withLock { exited in
            if let exited { return exited }
            if adopted {
                // Not our child: alive while this pid still runs with our monitor socket.
                let needle = "unix:\(qmp.path),server=on"
                let alive = Self.commandLine(of: pid)?.contains { $0.hasPrefix(needle) } == true && !Self.isZombie(pid)
                if !alive { exited = 0 }
                return exited
            }
            var status: Int32 = 0
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid || (r < 0 && errno == ECHILD) {
                exited = status
                return status
            }
            return nil
        }
    }

    /// Ends the process: QMP `quit`, then SIGKILL of this pid if it has not exited after `grace` (also when its
    /// monitor does not answer: a blocked main loop takes neither `quit` nor SIGTERM).
    public func stop(grace: Duration = .seconds(5)) async {
        let clock = ContinuousClock()
        let deadline = clock.now + grace
        if isAlive { _ = try? await qmp.execute("quit", timeout: grace) }
        while isAlive, clock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        await kill()
        await qmp.closed()
    }

    /// SIGKILL of this process (its own pid only; nothing if it has already been reaped), and reaps it.
    public func kill() async {
        let signalled = exit.withLock { exited -> Bool in
            guard exited == nil else { return false }
            return Glibc.kill(pid, SIGKILL) == 0
        }
        if signalled {
            while isAlive { try? await Task.sleep(for: .milliseconds(5)) }
        }
        qmp.close()
        // QEMU leaves its listening socket behind; the path is this process's.
        if !isAlive { unlink(qmp.path) }
    }

    /// The last `bytes` of QEMU's log (why it failed).
    public func logTail(_ bytes: Int = 800) -> String {
        String(((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").suffix(bytes))
    }

    private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

    /// Adds "close every descriptor from 3 on" (glibc ≥ 2.34's `posix_spawn_file_actions_addclosefrom_np`,
    /// which Swift's Glibc module does not import, so it is looked up by name).
    private static func closeInheritedDescriptors(_ actions: inout posix_spawn_file_actions_t) throws(QEMUError) {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else {
            throw QEMUError(.launch, "this C library has no posix_spawn_file_actions_addclosefrom_np (glibc 2.34 or later is needed)")
        }
        let addCloseFrom = unsafeBitCast(symbol, to: AddCloseFrom.self)
        guard addCloseFrom(&actions, 3) == 0 else { throw QEMUError(.launch, "posix_spawn_file_actions_addclosefrom_np failed") }
    }

    /// posix_spawnp with a clean signal state (Swift's threads block most signals, and a child
    /// inherits the mask), stdin from /dev/null, stdout and stderr to `log`, no other descriptor.
    private static func spawn(_ arguments: [String], log: String) throws(QEMUError) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Nothing else of the daemon's: an inherited socket would keep a closed migration connection open.
        try closeInheritedDescriptors(&actions)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        argv.append(nil)
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, arguments[0], &actions, &attributes, argv, environ)
        guard rc == 0 else {
            throw QEMUError(.launch, "cannot start \(arguments[0]): \(String(cString: strerror(rc)))")
        }
        return pid
    }
}
