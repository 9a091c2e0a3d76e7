import Foundation
import Subprocess
import Synchronization
#if canImport(System)
import System
#else
import SystemPackage
#endif

/// A program started with swift-subprocess (argv entries, never a shell, explicit environment), with
/// an async wait and a stop by its own PID.
///
/// swift-subprocess spawns from one long-lived worker thread and gives the child an empty signal mask
/// and default signal dispositions, so the program reacts to SIGTERM (Swift's worker threads block most
/// signals, and a plain `posix_spawn` from them would pass that mask on: `gss-server` would ignore
/// SIGTERM). A task of its own waits for the program to end. Use
/// ``TestRealm/launch(_:_:outputPath:dieWithParent:)`` to start your own servers with a realm's environment.
public final class ChildProcess: Sendable {
    /// The exit, once known, and who waits for it.
    private final class ExitState: Sendable {
        private struct State {
            var status: (Int32, Bool)?
            var waiters: [CheckedContinuation<(Int32, Bool), Never>] = []
        }
        private let state = Mutex(State())

        var status: (Int32, Bool)? { state.withLock { $0.status } }

        func finish(_ value: (Int32, Bool)) {
            let pending = state.withLock { s in
                s.status = value
                defer { s.waiters = [] }
                return s.waiters
            }
            for waiter in pending { waiter.resume(returning: value) }
        }

        func wait() async -> (Int32, Bool) {
            await withCheckedContinuation { (continuation: CheckedContinuation<(Int32, Bool), Never>) in
                let done = state.withLock { s -> (Int32, Bool)? in
                    if let status = s.status { return status }
                    s.waiters.append(continuation)
                    return nil
                }
                if let done { continuation.resume(returning: done) }
            }
        }
    }

    private let state = ExitState()
    /// The program's process ID.
    public let pid: Int32
    /// The path that was executed (`/usr/bin/setpriv` for programs started to die with their parent).
    public let executable: String

    /// Starts `executable` with exactly `arguments` and `environment` (nothing inherited) and returns once it
    /// runs. Output goes to the given files (or /dev/null; one file when both paths are equal); `input`
    /// becomes its stdin (through a 0600 file in `inputDirectory`, removed once it is started).
    public init(executable: String, arguments: [String], environment: [String: String],
                currentDirectory: String? = nil, input: Data? = nil, inputDirectory: String = NSTemporaryDirectory(),
                standardOutputPath: String? = nil, standardErrorPath: String? = nil) async throws {
        let stdio = try Standard(input: input, inputDirectory: inputDirectory,
                                 output: standardOutputPath, error: standardErrorPath)
        // The child has its own copies once it runs; ours are closed when this returns (or throws).
        defer { stdio.close() }
        let configuration = Configuration(
            executable: .path(FilePath(executable)), arguments: Arguments(arguments),
            environment: .custom(Dictionary(environment.map { (Environment.Key(stringLiteral: $0.key), $0.value) },
                                            uniquingKeysWith: { $1 })),
            workingDirectory: currentDirectory.map { FilePath($0) })
        let (started, report) = AsyncStream<Result<Int32, any Error>>.makeStream()
        let state = self.state
        Task {
            do {
                let result = try await Subprocess.run(
                    configuration,
                    input: .fileDescriptor(stdio.input, closeAfterSpawningProcess: false),
                    output: .fileDescriptor(stdio.output, closeAfterSpawningProcess: false),
                    error: .fileDescriptor(stdio.error, closeAfterSpawningProcess: false)
                ) { execution in
                    report.yield(.success(execution.processIdentifier.value))
                }
                switch result.terminationStatus {
                case .exited(let code): state.finish((code, false))
                case .signaled(let signal): state.finish((signal, true))
                }
            } catch {
                report.yield(.failure(error))  // not started (a later failure finds nobody listening)
                state.finish((-1, false))      // waiters never hang
            }
            report.finish()
        }
        var spawned: Result<Int32, any Error>?
        for await outcome in started {
            spawned = outcome
            break
        }
        switch spawned {
        case .success(let pid)?:
            self.pid = pid
        case .failure(let error)?:
            throw TestRealmError.launchFailed(executable: executable, reason: "\(error)")
        case nil:
            throw TestRealmError.launchFailed(executable: executable, reason: "swift-subprocess reported nothing")
        }
        self.executable = executable
    }

    /// The three descriptors a child starts with (files or /dev/null), opened close-on-exec.
    private struct Standard {
        let input: FileDescriptor
        let output: FileDescriptor
        let error: FileDescriptor
        /// The input file's path, removed at `close()`.
        let inputPath: String?

        init(input data: Data?, inputDirectory: String, output: String?, error: String?) throws {
            var opened: [FileDescriptor] = []
            var inputPath: String?
            do {
                // Input comes from a file, never a pipe: a child that exits before reading (kinit when the
                // KDC is down) would make our write raise SIGPIPE and kill this process.
                if let data {
                    let path = (inputDirectory as NSString).appendingPathComponent("stdin-" + UUID().uuidString)
                    guard FileManager.default.createFile(atPath: path, contents: data, attributes: [.posixPermissions: 0o600]) else {
                        throw TestRealmError.fileSystem(path: path, reason: "cannot create input file")
                    }
                    inputPath = path
                    opened.append(try Self.open(path, .readOnly))
                } else {
                    opened.append(try Self.open("/dev/null", .readOnly))
                }
                opened.append(try output.map { try Self.create($0) } ?? Self.open("/dev/null", .writeOnly))
                if let error, error == output {
                    opened.append(try Self.duplicate(opened[1], path: error))
                } else {
                    opened.append(try error.map { try Self.create($0) } ?? Self.open("/dev/null", .writeOnly))
                }
            } catch {
                for fd in opened { try? fd.close() }
                if let inputPath { try? FileManager.default.removeItem(atPath: inputPath) }
                throw error
            }
            self.input = opened[0]
            self.output = opened[1]
            self.error = opened[2]
            self.inputPath = inputPath
        }

        func close() {
            for fd in [input, output, error] { try? fd.close() }
            if let inputPath { try? FileManager.default.removeItem(atPath: inputPath) }
        }

        private static func open(_ path: String, _ mode: FileDescriptor.AccessMode) throws -> FileDescriptor {
            do {
                return try FileDescriptor.open(FilePath(path), mode, options: [.closeOnExec])
            } catch {
                throw TestRealmError.fileSystem(path: path, reason: "cannot open: \(error)")
            }
        }

        /// A new empty file (truncated if it exists) for output.
        private static func create(_ path: String) throws -> FileDescriptor {
            do {
                return try FileDescriptor.open(FilePath(path), .writeOnly, options: [.create, .truncate, .closeOnExec],
                                               permissions: [.ownerReadWrite, .groupRead, .otherRead])
            } catch {
                throw TestRealmError.fileSystem(path: path, reason: "cannot create output file: \(error)")
            }
        }

        private static func duplicate(_ fd: FileDescriptor, path: String) throws -> FileDescriptor {
            do {
                return try fd.duplicate()
            } catch {
                throw TestRealmError.fileSystem(path: path, reason: "cannot duplicate the output descriptor: \(error)")
            }
        }
    }

    /// `executable arguments` wrapped in `setpriv --pdeathsig KILL` (which execs it, so the PID stays
    /// the daemon's): the daemon dies with this process even if it crashes (its parent thread is
    /// swift-subprocess's worker thread, which lives as long as the process). Unwrapped without setpriv.
    public static func dyingWithParent(_ executable: String, _ arguments: [String]) -> (String, [String]) {
        let setpriv = "/usr/bin/setpriv"
        guard FileManager.default.isExecutableFile(atPath: setpriv) else { return (executable, arguments) }
        return (setpriv, ["--pdeathsig", "KILL", "--", executable] + arguments)
    }

    /// True until the program has exited (and been reaped).
    public var isRunning: Bool { exitState == nil }

    /// Exit status (or signal number) and whether a signal ended it; nil while running.
    public var exitState: (status: Int32, signaled: Bool)? {
        state.status.map { ($0.0, $0.1) }
    }

    /// Waits for the program to end.
    public func wait() async -> (status: Int32, signaled: Bool) {
        let value = await state.wait()
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
