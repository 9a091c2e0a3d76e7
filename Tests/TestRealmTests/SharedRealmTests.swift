import Foundation
import Testing
import TestRealm

/// `shared()` is the only test that touches this process's environment.
@Suite struct SharedRealmTests {
    @Test func sharedRealmStartsOnceAndExportsEnvironment() async throws {
        async let first = TestRealm.shared()
        async let second = TestRealm.shared()
        async let third = TestRealm.sharedLDAP()
        let (a, b, ldap) = try await (first, second, third)
        #expect(a === b)
        #expect(a.backend == .db2 && ldap.backend == .ldap)
        #expect(String(cString: getenv("KRB5_CONFIG")) == a.krb5ConfigPath)
        #expect(String(cString: getenv("KRB5CCNAME")) == a.environment["KRB5CCNAME"])
        #expect(a.extraRealmPorts["UNREACHABLE.TEST"] != nil)

        let user = "shared-\(UUID().uuidString.prefix(8))"
        try await a.addPrincipal(user, password: "pw")
        _ = try await a.kinit(user, password: "pw")

        // The process krb5.conf (the shared realm's) also reaches the LDAP realm's KDC.
        try await ldap.addPrincipal(user, password: "pw-ldap")
        let viaProcessConfig = try await a.kinit(ldap.qualified(user), password: "pw-ldap")
        #expect(try await a.tickets(ccache: viaProcessConfig).first?.server == "krbtgt/\(ldap.name)@\(ldap.name)")
    }
}
