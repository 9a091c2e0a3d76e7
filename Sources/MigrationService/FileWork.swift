import NIOCore
import NIOPosix

/// The data path's file I/O and hashing (`pread`, `pwrite`, `fsync`, SHA-256 of a file) on NIO's
/// blocking thread pool (`NIOThreadPool.singleton`), never on Swift's cooperative pool or an event
/// loop. ``start(_:_:)`` returns at once, so a task can seal one chunk while the pool reads the next,
/// or unseal the next while the pool writes the last.
enum FileWork {
    typealias Pending<T: Sendable> = EventLoopFuture<Result<T, MigrationServiceError>>

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
