import Foundation
import Testing
@testable import TestRealm

/// The LDAP back end: a private slapd; constrained delegation (S4U2Proxy) really enforced.
@Suite struct LDAPBackendTests {
    static let migrationService = "Microsoft Virtual System Migration Service/hostb.test"

    /// Runs S4U2Self for `user` then S4U2Proxy to `target` as host/hosta.test, with a fresh ccache.
    func delegate(_ realm: TestRealm, keytab: String, user: String, to target: String) async throws -> CommandResult {
        let ccache = try await realm.kinit("host/hosta.test", keytab: keytab, forwardable: true)
        return try await realm.run("/usr/bin/kvno",
                                   ["-c", ccache, "-k", keytab, "-U", user, "-P", target], check: false)
    }

    @Test func constrainedDelegationEnforced() async throws {
        let realm = try await TestRealm.start(.init(name: "LDAP.TEST", backend: .ldap))
        let slapdPID = try #require(await realm.ldapServerPID)
        let kdcPID = try #require(await realm.kdcPID)
        #expect(realm.ldapURI?.hasPrefix("ldap://127.0.0.1:") == true)

        try await realm.addPrincipal("host/hosta.test", attributes: .init(okToAuthAsDelegate: true))
        try await realm.addPrincipal(Self.migrationService)
        try await realm.addPrincipal("cifs/hostb.test")
        try await realm.addPrincipal("user", password: "user-pw")
        let keytab = try await realm.exportKeytab(["host/hosta.test"])
        _ = try await realm.kinit("user", password: "user-pw")

        try await realm.setAllowedToDelegate("host/hosta.test", targets: [Self.migrationService + "@LDAP.TEST"])
        #expect(try await realm.allowedToDelegate("host/hosta.test") == [Self.migrationService + "@LDAP.TEST"])

        let allowed = try await delegate(realm, keytab: keytab, user: "user", to: Self.migrationService)
        #expect(allowed.succeeded, "\(allowed)\n\(realm.kdcLogTail())")
        #expect(realm.kdcLogTail(lines: 10).contains("CONSTRAINED-DELEGATION s4u-client=user@LDAP.TEST"))
        let refused = try await delegate(realm, keytab: keytab, user: "user", to: "cifs/hostb.test")
        #expect(!refused.succeeded)
        #expect(refused.standardError.contains("KDC can't fulfill requested option"))

        // Changing the list changes the answer at once (no KDC restart).
        try await realm.setAllowedToDelegate("host/hosta.test", targets: ["cifs/hostb.test"])
        let nowAllowed = try await delegate(realm, keytab: keytab, user: "user", to: "cifs/hostb.test")
        #expect(nowAllowed.succeeded, "\(nowAllowed)")
        let nowRefused = try await delegate(realm, keytab: keytab, user: "user", to: Self.migrationService)
        #expect(!nowRefused.succeeded)

        try await realm.setAllowedToDelegate("host/hosta.test", targets: [])
        #expect(try await realm.allowedToDelegate("host/hosta.test").isEmpty)
        let noneAllowed = try await delegate(realm, keytab: keytab, user: "user", to: "cifs/hostb.test")
        #expect(!noneAllowed.succeeded)

        await realm.shutdown()
        #expect(kill(slapdPID, 0) == -1 && errno == ESRCH, "slapd \(slapdPID) still exists")
        #expect(kill(kdcPID, 0) == -1 && errno == ESRCH, "krb5kdc \(kdcPID) still exists")
        #expect(!FileManager.default.fileExists(atPath: realm.directory))
    }

    @Test func principalAPIWorksOnLDAP() async throws {
        let realm = try await TestRealm.start(.init(backend: .ldap))
        try await realm.addPrincipal("carol", password: "pw", attributes: .init(forwardable: false))
        let ccache = try await realm.kinit("carol", password: "pw")
        #expect(try await !realm.ticketFlags(ccache: ccache).contains("F"))
        await #expect(throws: TestRealmError.self) { _ = try await realm.kinit("carol", password: "bad") }
        await realm.stopKDC()
        try await realm.startKDC()
        _ = try await realm.kinit("carol", password: "pw")
        await realm.shutdown()
    }

    @Test func delegationListNeedsLDAP() async throws {
        let realm = try await TestRealm.start()
        try await realm.addPrincipal("host/hosta.test")
        let error = await #expect(throws: TestRealmError.self) {
            try await realm.setAllowedToDelegate("host/hosta.test", targets: ["cifs/hostb.test"])
        }
        #expect(error == .unsupportedByBackend(operation: "setAllowedToDelegate", backend: .db2))
        await realm.shutdown()
    }

    @Test func filterEscaping() {
        #expect(LDAPServer.filterEscaped("a*(b)\\c") == "a\\2a\\28b\\29\\5cc")
        #expect(LDAPServer.filterEscaped("Micro soft/é") == "Micro soft/é")
    }
}
