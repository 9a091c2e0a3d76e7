import CredSSP
import GSS
import NIOCore
import NIOPosix

/// The data path's file I/O and hashing (`pread`, `pwrite`, `fsync`, SHA-256 of a file) on NIO's
/// blocking thread pool (`NIOThreadPool.singleton`), never on Swift's cooperative pool or an event
/// loop. ``start(_:_:)`` returns at once, so a task can seal one chunk while the pool reads the next,
/// or unseal the next while the pool writes the last.
enum FileWork {
    typealias Pending<T: Sendable> = EventLoopFuture<Result<T, MigrationServiceError>>

    /// Starts the pool and its event loops now if they have not started (NIO traps when it cannot create
    /// a thread; see ``ServingThreads``).
    static func startPool() {
        _ = NIOThreadPool.singleton
        _ = NIOSingletons.posixEventLoopGroup
    }

    /// Starts `body` on the pool; await it with ``finish(_:stage:)``.
    static func start<T: Sendable>(_ stage: MigrationStage,
                                   _ body: @escaping @Sendable () throws(MigrationServiceError) -> T) -> Pending<T> {
        NIOThreadPool.singleton.runIfActive(eventLoop: NIOSingletons.posixEventLoopGroup.any()) {
            Result { () throws(MigrationServiceError) in try body() }
        }
    }

    /// The outcome of work started with ``start(_:_:)``.
    static func finish<T: Sendable>(_ pending: Pending<T>, stage: MigrationStage) async throws(MigrationServiceError) -> T {
        let outcome: Result<T, MigrationServiceError>
        do {
            outcome = try await pending.get()
        } catch {
            throw .failure(.storage, .unspecifiedFailure, stage: stage, reason: "File I/O could not run",
                           detail: "the blocking thread pool is not running (\(error))")
        }
        return try outcome.get()
    }

    /// Runs `body` on the pool and returns its result.
    static func run<T: Sendable>(_ stage: MigrationStage,
                                 _ body: @escaping @Sendable () throws(MigrationServiceError) -> T) async throws(MigrationServiceError) -> T {
        try await finish(start(stage, body), stage: stage)
    }
}

/// Every thread pool a listener's connections use, started before the listener binds. NIO stops the process (a
/// precondition) when it cannot create a pool thread, so a pool started lazily — at the first sign-on or the first
/// file write — would crash a daemon that has reached its thread limit (a pids cgroup, `ulimit -u`) instead of
/// letting it refuse or serve with the threads it has. CredSSP's session threads start here too, so after this no
/// code of ours makes a thread: at a kernel cap, a session never takes the place of a worker Swift's cooperative pool
/// needs back (docs/credssp.md).
enum ServingThreads {
    static func start() {
        GSSThreadPool.start()  // KDC calls: sign-on, S4U2Proxy, host tickets
        FileWork.startPool()   // state files: reads, writes, SHA-256
        CredSSPThreads.start() // CredSSP sessions (TLS and the inner SPNEGO steps)
    }
}
