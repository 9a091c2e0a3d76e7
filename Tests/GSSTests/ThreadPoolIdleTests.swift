import Foundation
@testable import GSS
import NIOPosix
import Synchronization
import Testing
import TestSupport

/// What the exit handler of GSS's pool waits for (MIT tears its locks down at exit: no GSS call may still run
/// then), on a pool of the test's own so that other suites' GSS calls do not count. The wait blocks, so the
/// test waits on its blocking threads (`BlockingWork`), not on Swift's cooperative pool.
@Suite("GSS thread pool: idle before exit")
struct ThreadPoolIdleTests {
    static func withPool(_ body: (GSSCallPool) async throws -> Void) async throws {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        do {
            try await body(GSSCallPool(pool: pool))
        } catch {
            try await pool.shutdownGracefully()
            throw error
        }
        try await pool.shutdownGracefully()
    }

    @Test("a running call keeps the pool busy until it is over; then it is idle at once")
    func busyUntilTheCallEnds() async throws {
        try await Self.withPool { calls in
            #expect(calls.waitUntilIdle(timeout: .zero), "idle before any call")
            let started = Mutex(false), finish = Mutex(false)
            let call = Task {
                try await calls.run(.acquireCredential) { () throws(GSSError) -> Int in
                    started.withLock { $0 = true }
                    // Blocks, as a KDC call does, until the test lets it end (at most 60 s).
                    for _ in 0..<60_000 where !finish.withLock({ $0 }) { Thread.sleep(forTimeInterval: 0.001) }
                    return 7
                }
            }
            while !started.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(1)) }
            #expect(calls.callsInFlight == 1)
            #expect(try await BlockingWork.run { calls.waitUntilIdle(timeout: .milliseconds(50)) } == false,
                    "a call is running")
            finish.withLock { $0 = true }
            #expect(try await BlockingWork.run { calls.waitUntilIdle(timeout: .seconds(60)) })
            #expect(try await call.value == 7)
        }
    }

    @Test("a call cancelled before it started is not made and does not leave the pool counted busy")
    func cancelledBeforeStart() async throws {
        try await Self.withPool { calls in
            let made = Mutex(false)
            let task = Task {
                withUnsafeCurrentTask { $0?.cancel() }
                return try await calls.run(.acquireCredential) { () throws(GSSError) -> Int in
                    made.withLock { $0 = true }
                    return 1
                }
            }
            let outcome = await task.result
            #expect(throws: GSSError.self) { try outcome.get() }
            #expect(made.withLock { $0 } == false)
            #expect(calls.callsInFlight == 0)
        }
    }
}
