import Foundation

/// Daemons and directories of realms still alive, killed and removed at process exit
/// (the ``TestRealm/shared()`` realm is never shut down explicitly).
final class CleanupRegistry: @unchecked Sendable {
    static let shared = CleanupRegistry()

    private let lock = NSLock()
    private var pids: [String: Set<Int32>] = [:]
    private var directories: [String: String] = [:]
    private var installed = false
    private var signalSources: [Int32: any DispatchSourceSignal] = [:]
    /// The signal being handled, if one is: an `exit` elsewhere meanwhile (the run failing because its
    /// daemons were just killed) must still end the process with that signal, after the clean-up.
    private var pendingSignal: Int32 = 0
    /// Held for the whole of a clean-up, so that a second caller (the `exit` path while a signal's clean-up
    /// runs) waits until the directories are gone.
    private let cleaning = NSLock()

    /// Registers the exit-time clean-up once. Call with `lock` held.
    private func installAtExitLocked() {
        guard !installed else { return }
        installed = true
        atexit { CleanupRegistry.shared.atExit() }
    }

    func register(realm id: String, directory: String?, pid: Int32?) {
        lock.lock()
        defer { lock.unlock() }
        if let directory { directories[id] = directory }
        if let pid { pids[id, default: []].insert(pid) }
        installAtExitLocked()
    }

    func unregister(realm id: String, pid: Int32) {
        lock.lock()
        defer { lock.unlock() }
        pids[id]?.remove(pid)
    }

    func unregister(realm id: String) {
        lock.lock()
        defer { lock.unlock() }
        pids[id] = nil
        directories[id] = nil
    }

    /// See ``TestRealm/removeDirectoriesOnSignals()``. Idempotent per signal.
    func installSignalHandlers(_ signals: [Int32]) {
        lock.lock()
        defer { lock.unlock() }
        installAtExitLocked()
        for sig in signals where signalSources[sig] == nil {
            signal(sig, SIG_IGN)   // delivered to the dispatch source only
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                CleanupRegistry.shared.markSignal(sig)
                CleanupRegistry.shared.cleanUpAtExit()
                Self.end(with: sig)
            }
            source.resume()
            signalSources[sig] = source
        }
    }

    private func markSignal(_ sig: Int32) {
        lock.lock()
        defer { lock.unlock() }
        if pendingSignal == 0 { pendingSignal = sig }
    }

    /// End as the signal would have: default action, sent to the process (this thread may block it);
    /// should it survive that, exit with the shell's 128 + signal.
    private static func end(with sig: Int32) -> Never {
        signal(sig, SIG_DFL)
        kill(getpid(), sig)
        usleep(200_000)
        _exit(128 + sig)
    }

    /// At `exit`: the clean-up (waiting for one a signal started), then that signal's ending if there was one.
    private func atExit() {
        cleanUpAtExit()
        lock.lock()
        let sig = pendingSignal
        lock.unlock()
        if sig != 0 { Self.end(with: sig) }
    }

    private func cleanUpAtExit() {
        cleaning.lock()
        defer { cleaning.unlock() }
        lock.lock()
        let allPIDs = pids.values.flatMap { $0 }
        let allDirectories = Array(directories.values)
        pids = [:]
        directories = [:]
        lock.unlock()
        for pid in allPIDs where pid > 0 { kill(pid, SIGKILL) }
        for directory in allDirectories where (try? FileManager.default.removeItem(atPath: directory)) == nil {
            // A daemon killed just now may still have been writing into it: once more.
            usleep(100_000)
            try? FileManager.default.removeItem(atPath: directory)
        }
    }
}
