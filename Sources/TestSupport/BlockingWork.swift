import NIOPosix

/// Blocking test work (sockets, GSSAPI calls that wait for the KDC, child processes) on NIO's
/// thread pool, never on the cooperative pool: the tests' one way to block.
package enum BlockingWork {
    /// Tests block in pairs (a server thread waits for its client), and Swift Testing runs many
    /// tests at once: the pool is wide enough that a waiting half never starves the other.
    package static let threadCount = 64

    static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: threadCount)
        pool.start()
        return pool
    }()

    /// Runs `body` on the tests' thread pool and returns (or throws) what it does.
    package static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await pool.runIfActive(body)
    }
}
