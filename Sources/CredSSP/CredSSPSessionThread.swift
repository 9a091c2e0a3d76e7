import Foundation
import Synchronization

/// A thread CredSSP clients and servers run on: each state machine is an actor whose serial executor is one of a
/// small shared set of these threads (``assign()``), so the number of threads does not grow with the connections.
///
/// - The in-memory TLS channel (NIO's `EmbeddedChannel`) must be used from one thread: an actor keeps its thread
///   for its whole life, so it always is, and every TLS operation is a plain call instead of a hop to another queue.
/// - The inner authentication may block on a KDC. It runs here, never on a NIO event loop (an actor with its own
///   executor ignores a task's executor preference) and never on a thread of Swift's cooperative pool. A blocked
///   step delays the other sessions on the same thread only: a new session goes to the least busy thread.
final class CredSSPSessionThread: SerialExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    private var work: [UnownedJob] = []
    private var started = false
    private var stopping = false
    private var threadID: pthread_t?
    /// Sessions (actors) currently assigned to this thread; guarded by the shared set's mutex (``pool``).
    fileprivate var sessions = 0

    /// The thread's name (`/proc/self/task/*/comm`): ``sharedName`` for the shared set.
    private let name: String
    static let sharedName = "credssp-shared"

    /// A thread of its own, started on first use (tests); CredSSP's actors take a shared one from ``assign()``.
    init(name: String = "credssp-own") { self.name = name }

    // MARK: The shared set

    /// How many shared threads at most: enough for the cores, and for a few sign-ons waiting on a KDC at once.
    static let poolSize = max(4, ProcessInfo.processInfo.activeProcessorCount)

    /// The shared threads started so far.
    private static let pool = Mutex<[CredSSPSessionThread]>([])

    /// The shared thread with the fewest sessions, starting a new one while there are fewer than ``poolSize``;
    /// call ``release()`` when the session ends. Throws when no thread exists and none can be started (the
    /// process is at its thread limit), so a connection fails at once instead of waiting for ever.
    static func assign() throws(CredSSPError) -> CredSSPSessionThread {
        try pool.withLock { threads throws(CredSSPError) -> CredSSPSessionThread in
            let idle = threads.min { $0.sessions < $1.sessions }
            let chosen: CredSSPSessionThread
            if let idle, idle.sessions == 0 || threads.count >= poolSize {
                chosen = idle
            } else {
                let thread = CredSSPSessionThread(name: sharedName)
                if thread.start() {
                    threads.append(thread)
                    chosen = thread
                } else if let idle {
                    chosen = idle  // at the thread limit: share a running thread
                } else {
                    throw CredSSPError(.invalidState, .insufficientMemory,
                                       "Cannot start a CredSSP session thread: the process is at its thread limit")
                }
            }
            chosen.sessions += 1
            return chosen
        }
    }

    /// Ends one session's use of a shared thread (the thread itself stays for later sessions).
    func release() {
        Self.pool.withLock { _ in sessions = max(0, sessions - 1) }
    }

    /// The shared threads started so far (tests).
    static var startedThreads: Int { pool.withLock { $0.count } }

    // MARK: Executor

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        work.append(job)
        let start = !started
        condition.signal()
        condition.unlock()
        if start { _ = self.start() }
    }

    /// Starts the thread (once); false when the system refuses a new thread.
    @discardableResult
    private func start() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        if started { return true }
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        let context = Unmanaged.passRetained(self)
        var thread = pthread_t()
        let result = pthread_create(&thread, &attributes, { raw in
            guard let raw else { return nil }
            let executor = Unmanaged<CredSSPSessionThread>.fromOpaque(raw).takeRetainedValue()
            executor.run()
            return nil
        }, context.toOpaque())
        guard result == 0 else {
            context.release()
            return false
        }
        started = true
        return true
    }

    /// Lets a thread of its own (``init()``) end once its queued work has run.
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
        Thread.current.name = String(name.prefix(15))  // Foundation sets the pthread name on Linux
        condition.lock()
        threadID = pthread_self()
        condition.unlock()
        let executor = asUnownedSerialExecutor()
        while true {
            condition.lock()
            while work.isEmpty && !stopping { condition.wait() }
            if work.isEmpty {  // stopping, nothing left
                condition.unlock()
                return
            }
            let batch = work
            work = []
            condition.unlock()
            for job in batch { job.runSynchronously(on: executor) }
        }
    }
}
