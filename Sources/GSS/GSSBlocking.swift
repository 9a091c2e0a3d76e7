#if canImport(Glibc)
import Glibc
#endif
import NIOPosix
import Synchronization

/// Runs GSSAPI calls that may wait for the KDC on NIO's blocking thread pool, off the cooperative
/// pool and off event loops; used by the `async` variants of blocking calls.
enum GSSBlocking {
    /// The pool's size bounds how many KDC exchanges wait at once; more queue up. Sixteen
    /// threads: KDC calls spend their time waiting (up to the KDC timeout), not computing.
    static let threadCount = 16

    /// A pool of GSS's own (not `NIOThreadPool.singleton`, which has one thread per core and
    /// is shared with file I/O): started once, alive for the process.
    static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: threadCount)
        pool.start()
        // MIT tears its mutexes down in its exit destructor, which runs after the atexit handlers: a call still
        // running then (one whose caller stopped waiting, or a credential released there) aborts the process in
        // `k5_mutex_lock`. So exit waits for the pool's calls first, 5 s at most (a KDC that does not answer).
        atexit { _ = GSSBlocking.calls.waitUntilIdle(timeout: .seconds(5)) }
        return pool
    }()

    /// Starts the pool now if it has not started. NIO traps when it cannot create a pool thread, so a
    /// server makes its threads before it serves, not at its first KDC call, when the process may be at
    /// its thread limit (a pids cgroup, `ulimit -u`).
    static func start() { _ = pool }

    /// GSS's calls on ``pool``, counted, so that the process's exit can wait for them.
    static let calls = GSSCallPool(pool: pool)

    /// Runs `body` on the pool. A task cancelled before its call started gets a GSS_S_FAILURE
    /// error instead (the call is not made); once started, a call runs to its end.
    static func run<T: Sendable>(_ operation: GSSOperation,
                                 _ body: @escaping @Sendable () throws(GSSError) -> T) async throws(GSSError) -> T {
        try await calls.run(operation, body)
    }
}

/// Blocking GSS calls on a thread pool, counted until each is over.
final class GSSCallPool: Sendable {
    private let pool: NIOThreadPool
    /// Calls submitted and not yet over.
    private let inFlight = Atomic<Int>(0)

    init(pool: NIOThreadPool) { self.pool = pool }

    var callsInFlight: Int { inFlight.load(ordering: .acquiring) }

    /// A call's closure, which the pool thread drops as soon as the call returns, before the call counts as over:
    /// the pool's work item does not keep what the closure captured (names, credentials, contexts whose deinit
    /// calls MIT) alive on that thread past the count.
    private final class Call<T>: @unchecked Sendable {
        private let operation: GSSOperation
        private var body: (@Sendable () throws(GSSError) -> T)?
        init(_ operation: GSSOperation, _ body: @escaping @Sendable () throws(GSSError) -> T) {
            self.operation = operation
            self.body = body
        }

        func run() -> Result<T, GSSError> {
            guard let body = self.body.take() else { return .failure(GSSError(operation, .failure, "The call was already made")) }
            return Result { () throws(GSSError) in try body() }
        }
    }

    /// Blocks until no call is running or queued, at most `timeout`; false if one still is. For the exit
    /// handler (and tests on a blocking thread), not for async code.
    func waitUntilIdle(timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while callsInFlight > 0 {
            guard ContinuousClock.now < deadline else { return false }
            usleep(1_000)
        }
        return true
    }

    /// Runs `body` on the pool (see ``GSSBlocking/run(_:_:)``).
    func run<T: Sendable>(_ operation: GSSOperation,
                          _ body: @escaping @Sendable () throws(GSSError) -> T) async throws(GSSError) -> T {
        let outcome: Result<T, GSSError>
        let call = Call(operation, body)
        inFlight.add(1, ordering: .acquiringAndReleasing)
        do {
            outcome = try await pool.runIfActive { [self] in
                let result = call.run()
                self.inFlight.subtract(1, ordering: .acquiringAndReleasing)
                return result
            }
        } catch {
            // runIfActive throws only when it did not run the call (cancelled before it started, or no pool).
            inFlight.subtract(1, ordering: .acquiringAndReleasing)
            let reason = error is CancellationError ? "The task was cancelled before the call started"
                : "The blocking thread pool is not running (\(error))"
            throw GSSError(operation, .failure, reason)
        }
        return try outcome.get()
    }
}

/// The threads GSS's `async` calls (those that may wait for a KDC) run on.
public enum GSSThreadPool {
    /// Starts them now (once; later calls do nothing). A server calls this before it accepts connections:
    /// the pool otherwise starts at the first `async` call, and NIO stops the process (a precondition)
    /// when a thread cannot be created then — a daemon at its thread limit would crash instead of refusing.
    public static func start() { GSSBlocking.start() }
}

/// Moves a non-copyable value to the blocking queue and back. Filled until taken, exactly once.
final class GSSTransfer<Value: ~Copyable>: @unchecked Sendable {
    private var value: Value?

    init(_ value: consuming Value) { self.value = .some(value) }

    func withValue<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        var taken = value.take()!  // invariant: filled until take()
        let result = Result { () throws(E) in try body(&taken) }
        value = .some(taken)
        return try result.get()
    }

    func take() -> Value { value.take()! }  // invariant: called once, after the work finished
}

extension GSSInitiatorContext {
    /// `step(_:)` on GSS's blocking thread pool: the first step may wait for the KDC (service ticket).
    public mutating func step(_ input: [UInt8]? = nil) async throws(GSSError) -> GSSStep {
        let transfer = GSSTransfer(consume self)
        let outcome: Result<GSSStep, GSSError>
        do {
            outcome = .success(try await GSSBlocking.run(.initSecContext) { () throws(GSSError) in
                try transfer.withValue { context throws(GSSError) in try context.step(input) }
            })
        } catch {
            outcome = .failure(error)
        }
        self = transfer.take()
        return try outcome.get()
    }
}

extension GSSAcceptorContext {
    /// `step(_:)` on GSS's blocking thread pool: an acceptor may contact the KDC (proxy credentials).
    public mutating func step(_ input: [UInt8]) async throws(GSSError) -> GSSStep {
        let transfer = GSSTransfer(consume self)
        let outcome: Result<GSSStep, GSSError>
        do {
            outcome = .success(try await GSSBlocking.run(.acceptSecContext) { () throws(GSSError) in
                try transfer.withValue { context throws(GSSError) in try context.step(input) }
            })
        } catch {
            outcome = .failure(error)
        }
        self = transfer.take()
        return try outcome.get()
    }
}

extension GSSCredential {
    /// `acquire(name:password:…)` on GSS's blocking thread pool (an AS exchange with the KDC).
    public static func acquire(name: GSSName, password: String, usage: GSSCredentialUsage = .initiate,
                               mechanisms: [GSSMechanism] = [.kerberos],
                               lifetime: Duration? = nil) async throws(GSSError) -> GSSCredential {
        try await GSSBlocking.run(.acquireCredentialWithPassword) { () throws(GSSError) in
            try acquire(name: name, password: password, usage: usage, mechanisms: mechanisms, lifetime: lifetime)
        }
    }

    /// `impersonate(_:…)` on GSS's blocking thread pool (an S4U2Self exchange with the KDC).
    public func impersonate(_ user: GSSName, usage: GSSCredentialUsage = .initiate,
                            mechanisms: [GSSMechanism] = [.kerberos],
                            lifetime: Duration? = nil) async throws(GSSError) -> GSSCredential {
        try await GSSBlocking.run(.impersonate) { () throws(GSSError) in
            try self.impersonate(user, usage: usage, mechanisms: mechanisms, lifetime: lifetime)
        }
    }
}

extension GSSCredential {
    /// `acquire(name:usage:mechanisms:lifetime:store:)` with `store` on GSS's blocking thread pool (it reads
    /// ccache and keytab files, and with a client keytab may get a ticket from the KDC).
    public static func acquire(name: GSSName? = nil, usage: GSSCredentialUsage = .initiate,
                               mechanisms: [GSSMechanism] = [.kerberos], lifetime: Duration? = nil,
                               from store: GSSCredentialStore) async throws(GSSError) -> GSSCredential {
        try await GSSBlocking.run(.acquireCredential) { () throws(GSSError) in
            try acquire(name: name, usage: usage, mechanisms: mechanisms, lifetime: lifetime, store: store)
        }
    }
}
