import Foundation

extension TestRealm {
    /// The one realm of this process (``Configuration/shared``: `MIGRATION.TEST`, DB2), started on
    /// first use, exactly once, together with ``sharedLDAP()``. It `setenv`s its ``environment``
    /// once, so in-process GSSAPI uses it; its krb5.conf also lists `DELEGATION.TEST`. Tests
    /// sharing it should use unique principal names. It is never shut down; its daemons are
    /// killed when the process exits.
    public static func shared() async throws -> TestRealm {
        try await SharedRealms.instance.realms().db2
    }

    /// The LDAP-backed companion of ``shared()`` (``Configuration/sharedLDAP``: `DELEGATION.TEST`,
    /// domain `.delegation.test`), where constrained delegation is enforced. In-process GSSAPI
    /// reaches it through the shared realm's krb5.conf (the process environment); child programs
    /// can use either realm's ``environment``.
    public static func sharedLDAP() async throws -> TestRealm {
        try await SharedRealms.instance.realms().ldap
    }
}

extension TestRealm.Configuration {
    /// The configuration of ``TestRealm/sharedLDAP()``.
    public static let sharedLDAP = TestRealm.Configuration(name: "DELEGATION.TEST", backend: .ldap,
                                                          domains: ["delegation.test"])
}

/// Starts the shared realms once; a failed start is retried by the next caller.
private actor SharedRealms {
    static let instance = SharedRealms()
    private var starting: Task<(db2: TestRealm, ldap: TestRealm), any Error>?

    func realms() async throws -> (db2: TestRealm, ldap: TestRealm) {
        if let starting { return try await starting.value }
        let task = Task { () async throws -> (db2: TestRealm, ldap: TestRealm) in
            let ldap = try await TestRealm.start(.sharedLDAP)
            var configuration = TestRealm.Configuration.shared
            configuration.knownRealms.append(.init(ldap))
            let db2: TestRealm
            do {
                db2 = try await TestRealm.start(configuration)
            } catch {
                await ldap.shutdown()
                throw error
            }
            for (key, value) in db2.environment { setenv(key, value, 1) }
            return (db2, ldap)
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
