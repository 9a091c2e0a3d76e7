import Foundation

/// One child program started with Foundation `Process` (argv, never a shell), with an async wait.
final class ChildProcess: @unchecked Sendable {
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
    let pid: Int32
    let executable: String

    /// Starts `executable` with exactly `arguments` and `environment` (nothing inherited).
    /// Output goes to the given files (or /dev/null); `input` is written to its stdin, then closed.
    init(executable: String, arguments: [String], environment: [String: String],
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
        let out = try sink(standardOutputPath)
        let err = try sink(standardErrorPath)
        process.standardOutput = out
        process.standardError = err
        // Input comes from a file, never a pipe: a child that exits before reading (kinit when the
        // KDC is down) would make our write raise SIGPIPE and kill this process.
        var inputFile: String?
        if let input {
            let path = (inputDirectory as NSString).appendingPathComponent("stdin-" + UUID().uuidString)
            guard FileManager.default.createFile(atPath: path, contents: input, attributes: [.posixPermissions: 0o600]),
                  let handle = FileHandle(forReadingAtPath: path) else {
                throw TestRealmError.fileSystem(path: path, reason: "cannot create input file")
            }
            process.standardInput = handle
            inputFile = path
        } else {
            process.standardInput = FileHandle.nullDevice
        }
        defer {
            if let inputFile { try? FileManager.default.removeItem(atPath: inputFile) }
        }
        let state = self.state
        process.terminationHandler = { finished in
            state.finish((finished.terminationStatus, finished.terminationReason == .uncaughtSignal))
        }
        try Self.spawnWithDefaultSignalMask(process, executable: executable)
        if out !== FileHandle.nullDevice { try? out.close() }
        if err !== FileHandle.nullDevice { try? err.close() }
        if let handle = process.standardInput as? FileHandle, handle !== FileHandle.nullDevice {
            try? handle.close()
        }
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
    static func dyingWithParent(_ executable: String, _ arguments: [String]) -> (String, [String]) {
        let setpriv = "/usr/bin/setpriv"
        guard FileManager.default.isExecutableFile(atPath: setpriv) else { return (executable, arguments) }
        return (setpriv, ["--pdeathsig", "KILL", "--", executable] + arguments)
    }

    /// Exit status (or signal number) and whether a signal ended it; nil while running.
    var exitState: (status: Int32, signaled: Bool)? {
        state.lock.lock()
        defer { state.lock.unlock() }
        return state.status.map { ($0.0, $0.1) }
    }

    /// Waits for the program to end.
    func wait() async -> (status: Int32, signaled: Bool) {
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
    func send(_ signal: Int32) {
        guard exitState == nil, pid > 0 else { return }
        kill(pid, signal)
    }

    /// SIGTERM, then SIGKILL if it has not exited after `grace`; returns once it has exited.
    func stop(grace: Duration = .seconds(5)) async {
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
