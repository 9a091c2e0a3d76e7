import Foundation

/// A program started with Foundation `Process` (argv entries, never a shell, explicit environment)
/// with an async wait and a stop by its own PID.
///
/// Unlike a bare `Process.run()` from Swift concurrency code, it is spawned from a thread with an
/// empty signal mask, so the program reacts to SIGTERM (Swift's worker threads block most
/// signals and `posix_spawn` passes that mask on: `terminate()` then never ends a daemon such as
/// `gss-server`, and `waitUntilExit()` hangs). Use ``TestRealm/launch(_:_:outputPath:dieWithParent:)``
/// to start your own servers with a realm's environment.
public final class ChildProcess: @unchecked Sendable {
    /// Exit state shared with Foundation's termination handler.
    private final class ExitState: @unchecked Sendable {
        let lock = NSLock()
        var status: (Int32, Bool)?
        var waiters: [CheckedContinuation<(Int32, Bool), Never>] = []

        func finish(_ value: (Int32, Bool)) {
            lock.lock()
            status = value
            let pending = waiters
            waiters = []
            lock.unlock()
            for waiter in pending { waiter.resume(returning: value) }
        }
    }

    private let process: Process
    private let state = ExitState()
    /// The program's process ID.
    public let pid: Int32
    /// The path that was executed (`/usr/bin/setpriv` for programs started to die with their parent).
    public let executable: String

    /// Starts `executable` with exactly `arguments` and `environment` (nothing inherited).
    /// Output goes to the given files (or /dev/null; one file when both paths are equal); `input`
    /// becomes its stdin (through a 0600 file in `inputDirectory`, removed once it is started).
    public init(executable: String, arguments: [String], environment: [String: String],
         currentDirectory: String? = nil, input: Data? = nil, inputDirectory: String = NSTemporaryDirectory(),
         standardOutputPath: String? = nil, standardErrorPath: String? = nil) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = environment
        if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }

        func sink(_ path: String?) throws -> FileHandle {
            guard let path else { return FileHandle.nullDevice }
            guard FileManager.default.createFile(atPath: path, contents: nil),
                  let handle = FileHandle(forWritingAtPath: path) else {
                throw TestRealmError.fileSystem(path: path, reason: "cannot create output file")
            }
            return handle
        }
        // The child gets its own copies of these descriptors; ours are closed when init returns.
        let out = try sink(standardOutputPath)
        defer { if out !== FileHandle.nullDevice { try? out.close() } }
        let err = standardErrorPath != nil && standardErrorPath == standardOutputPath ? out : try sink(standardErrorPath)
        defer { if err !== FileHandle.nullDevice && err !== out { try? err.close() } }
        process.standardOutput = out
        process.standardError = err
        // Input comes from a file, never a pipe: a child that exits before reading (kinit when the
        // KDC is down) would make our write raise SIGPIPE and kill this process.
        var inputFile: (path: String, handle: FileHandle)?
        defer {
            if let inputFile {
                try? inputFile.handle.close()
                try? FileManager.default.removeItem(atPath: inputFile.path)
            }
        }
        if let input {
            let path = (inputDirectory as NSString).appendingPathComponent("stdin-" + UUID().uuidString)
            guard FileManager.default.createFile(atPath: path, contents: input, attributes: [.posixPermissions: 0o600]),
                  let handle = FileHandle(forReadingAtPath: path) else {
                try? FileManager.default.removeItem(atPath: path)
                throw TestRealmError.fileSystem(path: path, reason: "cannot create input file")
            }
            inputFile = (path, handle)
            process.standardInput = handle
        } else {
            process.standardInput = FileHandle.nullDevice
        }
        let state = self.state
        process.terminationHandler = { finished in
            state.finish((finished.terminationStatus, finished.terminationReason == .uncaughtSignal))
        }
        try Self.spawnWithDefaultSignalMask(process, executable: executable)
        self.process = process
        self.pid = process.processIdentifier
        self.executable = executable
    }

    /// Runs `process` on the ``Spawner`` thread (empty signal mask, lives as long as this process).
    private static func spawnWithDefaultSignalMask(_ process: Process, executable: String) throws {
        final class Outcome: @unchecked Sendable { var error: (any Error)? }
        let outcome = Outcome()
        Spawner.shared.run {
            do { try process.run() } catch { outcome.error = error }
        }
        if let error = outcome.error {
            throw TestRealmError.launchFailed(executable: executable, reason: "\(error)")
        }
    }

    /// `executable arguments` wrapped in `setpriv --pdeathsig KILL` (which execs it, so the PID stays
    /// the daemon's): the daemon dies with this process even if it crashes. Unwrapped without setpriv.
    public static func dyingWithParent(_ executable: String, _ arguments: [String]) -> (String, [String]) {
        let setpriv = "/usr/bin/setpriv"
        guard FileManager.default.isExecutableFile(atPath: setpriv) else { return (executable, arguments) }
        return (setpriv, ["--pdeathsig", "KILL", "--", executable] + arguments)
    }

    /// True until the program has exited (and been reaped).
    public var isRunning: Bool { exitState == nil }

    /// Exit status (or signal number) and whether a signal ended it; nil while running.
    public var exitState: (status: Int32, signaled: Bool)? {
        state.lock.lock()
        defer { state.lock.unlock() }
        return state.status.map { ($0.0, $0.1) }
    }

    /// Waits for the program to end.
    public func wait() async -> (status: Int32, signaled: Bool) {
        let value = await withCheckedContinuation { (continuation: CheckedContinuation<(Int32, Bool), Never>) in
            state.lock.lock()
            if let status = state.status {
                state.lock.unlock()
                continuation.resume(returning: status)
            } else {
                state.waiters.append(continuation)
                state.lock.unlock()
            }
        }
        return (value.0, value.1)
    }

    /// Sends `signal` to this process only (by its PID), if it is still running.
    public func send(_ signal: Int32) {
        guard exitState == nil, pid > 0 else { return }
        kill(pid, signal)
    }

    /// SIGTERM, then SIGKILL if it has not exited after `grace`; returns once it has exited.
    public func stop(grace: Duration = .seconds(5)) async {
        guard exitState == nil else { return }
        send(SIGTERM)
        let deadline = ContinuousClock.now + grace
        while exitState == nil, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if exitState == nil { send(SIGKILL) }
        _ = await wait()
    }
}
