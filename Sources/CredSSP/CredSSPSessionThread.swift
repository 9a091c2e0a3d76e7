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
    /// Jobs of the actors on this thread, and the ends of sessions sent by their deinits (``end(_:)``).
    private enum Work {
        case job(UnownedJob)
        case end(SessionTLS)
    }
    private var work: [Work] = []
    private var started = false
    private var stopping = false
    private var threadID: pthread_t?
    /// Sessions (actors) currently assigned to this thread (a hint for choosing the least busy thread).
    fileprivate let sessions = Atomic<Int>(0)

    /// The thread's name (`/proc/self/task/*/comm`): ``sharedName`` for the shared set.
    private let name: String
    static let sharedName = "credssp-shared"

    /// A thread of its own, started on first use (tests); CredSSP's actors take a shared one from ``assign()``.
    init(name: String = "credssp-own") { self.name = name }

    // MARK: The shared set

    /// How many shared threads at most: enough for the cores, and for a few sign-ons waiting on a KDC at once.
    static var poolSize: Int { CredSSPThreadSet.shared.size }

    /// A thread of the shared set for a new session (``CredSSPThreadSet/assign()``); ``release()`` it at the end.
    static func assign() throws(CredSSPError) -> CredSSPSessionThread { try CredSSPThreadSet.shared.assign() }

    /// The shared threads started so far (tests).
    static var startedThreads: Int { CredSSPThreadSet.shared.count }

    /// Ends one session's use of a shared thread (the thread itself stays for later sessions).
    func release() {
        sessions.wrappingSubtract(1, ordering: .relaxed)
    }

    /// A new thread named `name`, started; nil when the system refuses a new thread.
    static func started(name: String = sharedName) -> CredSSPSessionThread? {
        let thread = CredSSPSessionThread(name: name)
        return thread.start() ? thread : nil
    }

    // MARK: Executor

    func enqueue(_ job: consuming ExecutorJob) {
        push(.job(UnownedJob(job)))
    }

    /// Ends a session (its deinit calls this, wherever the last reference went): on this thread, after the work
    /// already queued, closes its TLS engine (bound to this thread), which frees its channel, then ``release()``s
    /// its place.
    func end(_ session: SessionTLS) {
        push(.end(session))
    }

    private func push(_ item: Work) {
        condition.lock()
        work.append(item)
        let start = !started
        condition.signal()
        condition.unlock()
        if start { _ = self.start() }
    }

    /// Starts the thread (once); false when the system refuses a new thread.
    @discardableResult
    fileprivate func start() -> Bool {
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
            for item in batch {
                switch item {
                case .job(let job): job.runSynchronously(on: executor)
                case .end(let session):
                    session.close()
                    release()
                }
            }
        }
    }
}

/// At most `size` session threads shared by all CredSSP sessions (``shared``), started on demand or all at once
/// (``startAll()``, which a server calls before it accepts connections: see ``CredSSPThreads``).
final class CredSSPThreadSet: Sendable {
    static let shared = CredSSPThreadSet(size: max(4, ProcessInfo.processInfo.activeProcessorCount))

    let size: Int
    private let threads = Mutex<[CredSSPSessionThread]>([])
    private let makeThread: @Sendable () -> CredSSPSessionThread?

    /// `makeThread` starts a thread, nil when the system refuses one (tests give one that refuses).
    init(size: Int, makeThread: @escaping @Sendable () -> CredSSPSessionThread? = { CredSSPSessionThread.started() }) {
        self.size = size
        self.makeThread = makeThread
    }

    /// The threads started so far.
    var count: Int { threads.withLock { $0.count } }

    /// Starts threads until there are `size` or the system refuses one; the number running then.
    @discardableResult
    func startAll() -> Int {
        threads.withLock { threads in
            while threads.count < size, let thread = makeThread() { threads.append(thread) }
            return threads.count
        }
    }

    /// The thread with the fewest sessions, starting a new one while there are fewer than `size` and none is idle.
    /// Throws when no thread exists and none can be started (the process is at its thread limit), so a connection
    /// fails at once instead of waiting for ever; at the limit with threads running, a running one is shared.
    func assign() throws(CredSSPError) -> CredSSPSessionThread {
        try threads.withLock { threads throws(CredSSPError) -> CredSSPSessionThread in
            let least = threads.min { $0.sessions.load(ordering: .relaxed) < $1.sessions.load(ordering: .relaxed) }
            let chosen: CredSSPSessionThread
            if let least, least.sessions.load(ordering: .relaxed) == 0 || threads.count >= size {
                chosen = least
            } else if let thread = makeThread() {
                threads.append(thread)
                chosen = thread
            } else if let least {
                chosen = least  // at the thread limit: share a running thread
            } else {
                throw CredSSPError(.invalidState, .insufficientMemory,
                                   "Cannot start a CredSSP session thread: the process is at its thread limit")
            }
            chosen.sessions.wrappingAdd(1, ordering: .relaxed)
            return chosen
        }
    }
}

/// The threads CredSSP clients and servers run on.
public enum CredSSPThreads {
    /// Starts all of them now (later calls start only those missing) and returns how many run. A server calls this
    /// before it accepts connections: afterwards no CredSSP session creates a thread, so a process held at its thread
    /// limit (a pids cgroup, `ulimit -u`) still serves CredSSP, and no session takes the place of a thread the
    /// runtime needs back (Swift's cooperative pool waits, in the enqueuing thread, until it can make a worker).
    /// Without it, threads start at the first sessions, and a session that cannot get any fails at once with
    /// SEC_E_INSUFFICIENT_MEMORY.
    @discardableResult
    public static func start() -> Int { CredSSPThreadSet.shared.startAll() }
}

/// Where a CredSSP session keeps its TLS engine, so that its deinit can hand the engine to the session thread
/// (``CredSSPSessionThread/end(_:)``), the one thread that touches it: the actor uses it only on that
/// thread, and once the session is gone nothing else can reach it.
final class SessionTLS: @unchecked Sendable {
    var engine: TLSEngine?

    /// Closes the engine (frees its channel); call on the session thread.
    func close() {
        engine?.close()
        engine = nil
    }
}
