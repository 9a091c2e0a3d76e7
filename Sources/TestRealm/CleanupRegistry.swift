import Foundation

/// Daemons and directories of realms still alive, killed and removed at process exit
/// (the ``TestRealm/shared()`` realm is never shut down explicitly).
final class CleanupRegistry: @unchecked Sendable {
    static let shared = CleanupRegistry()

    private let lock = NSLock()
    private var pids: [String: Set<Int32>] = [:]
    private var directories: [String: String] = [:]
    private var installed = false

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

    private func cleanUpAtExit() {
        lock.lock()
        let allPIDs = pids.values.flatMap { $0 }
        let allDirectories = Array(directories.values)
        pids = [:]
        directories = [:]
        lock.unlock()
        for pid in allPIDs where pid > 0 { kill(pid, SIGKILL) }
        for directory in allDirectories { try? FileManager.default.removeItem(atPath: directory) }
    }
}
