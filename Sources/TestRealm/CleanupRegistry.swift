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

    func register(realm id: String, directory: String?, pid: Int32?) {
        lock.lock()
        defer { lock.unlock() }
        if let directory { directories[id] = directory }
        if let pid { pids[id, default: []].insert(pid) }
        if !installed {
            installed = true
            atexit { CleanupRegistry.shared.cleanUpAtExit() }
        }
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
        for sig in signals where signalSources[sig] == nil {
            signal(sig, SIG_IGN)   // delivered to the dispatch source only
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                CleanupRegistry.shared.cleanUpAtExit()
                // End as the signal would have: default action, sent to the process (this thread
                // may block it); should it survive that, exit with the shell's 128 + signal.
                signal(sig, SIG_DFL)
                kill(getpid(), sig)
                usleep(200_000)
                _exit(128 + sig)
            }
            source.resume()
            signalSources[sig] = source
        }
    }

    private func cleanUpAtExit() {
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
