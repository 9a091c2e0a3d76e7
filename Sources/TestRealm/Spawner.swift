import Foundation

/// One long-lived thread that starts every child program.
///
/// - Its signal mask is empty. `posix_spawn` hands the caller's mask to the child, and Swift's
///   worker threads block almost every signal, so a daemon spawned from them would ignore SIGTERM.
/// - It never exits, so a daemon started under `setpriv --pdeathsig KILL` (whose "parent" is the
///   spawning thread) dies only when this whole process dies, even by a crash.
final class Spawner: @unchecked Sendable {
    static let shared = Spawner()

    private let condition = NSCondition()
    private var queue: [() -> Void] = []

    private init() {
        let thread = Thread { [self] in
            var empty = sigset_t()
            sigemptyset(&empty)
            pthread_sigmask(SIG_SETMASK, &empty, nil)
            while true {
                condition.lock()
                while queue.isEmpty { condition.wait() }
                let job = queue.removeFirst()
                condition.unlock()
                job()
            }
        }
        thread.name = "TestRealm.Spawner"
        thread.start()
    }

    /// Runs `job` on the spawner thread and returns when it is done (spawning takes about a millisecond).
    func run(_ job: @escaping () -> Void) {
        let done = DispatchSemaphore(value: 0)
        condition.lock()
        queue.append {
            job()
            done.signal()
        }
        condition.signal()
        condition.unlock()
        done.wait()
    }
}
