import Foundation

/// The thread a CredSSP client or server runs on: each state machine is an actor whose serial executor is a
/// thread of its own, started on first use and ended when the actor goes away.
///
/// - The in-memory TLS channel (NIO's `EmbeddedChannel`) must be used from one thread: here it always is, and every
///   TLS operation is a plain call instead of a hop to another queue.
/// - The inner authentication may block on a KDC. It runs here, never on a NIO event loop (an actor with its own
///   executor ignores a task's executor preference) and never on a thread of Swift's cooperative pool.
/// One exchange costs one thread for its duration: fine for the few concurrent sign-ons of migration hosts.
final class CredSSPSessionThread: SerialExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var started = false
    private var stopping = false
    private var threadID: pthread_t?

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        if !started {
            started = true
            let thread = Thread { [self] in run() }
            thread.start()
        }
        condition.signal()
        condition.unlock()
    }

    /// Lets the thread end once its queued jobs have run.
    func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    /// True on this executor's thread.
    var isCurrent: Bool {
        condition.lock()
        defer { condition.unlock() }
        guard let threadID else { return false }
        return pthread_equal(threadID, pthread_self()) != 0
    }

    func checkIsolated() {
        precondition(isCurrent, "Not on the CredSSP session thread")
    }

    /// Marks session threads (thread-specific data), for ``isSessionThread``.
    private static let marker: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// True on any CredSSP session thread.
    static var isSessionThread: Bool { pthread_getspecific(marker) != nil }

    private func run() {
        pthread_setspecific(Self.marker, UnsafeRawPointer(bitPattern: 1))
        condition.lock()
        threadID = pthread_self()
        condition.unlock()
        let executor = asUnownedSerialExecutor()
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping { condition.wait() }
            if jobs.isEmpty {  // stopping, nothing left
                condition.unlock()
                return
            }
            let batch = jobs
            jobs = []
            condition.unlock()
            for job in batch { job.runSynchronously(on: executor) }
        }
    }
}
