import Foundation

extension TestRealm {
    /// The one realm of this process (``Configuration/shared``), started on first use, exactly once.
    /// It also `setenv`s its ``environment`` once, so in-process GSSAPI uses it. Tests sharing it
    /// should use unique principal names. It is never shut down; its KDC is killed at process exit.
    public static func shared() async throws -> TestRealm {
        try await SharedRealm.instance.realm()
    }
}

/// Starts the shared realm once; a failed start is retried by the next caller.
private actor SharedRealm {
    static let instance = SharedRealm()
    private var starting: Task<TestRealm, any Error>?

    func realm() async throws -> TestRealm {
        if let starting { return try await starting.value }
        let task = Task { () async throws -> TestRealm in
            let realm = try await TestRealm.start(.shared)
            for (key, value) in realm.environment { setenv(key, value, 1) }
            return realm
        }
        starting = task
        do {
            return try await task.value
        } catch {
            starting = nil
            throw error
        }
    }
}
