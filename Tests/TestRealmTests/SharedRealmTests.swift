import Foundation
import Testing
import TestRealm

/// `shared()` is the only test that touches this process's environment.
@Suite struct SharedRealmTests {
    @Test func sharedRealmStartsOnceAndExportsEnvironment() async throws {
        async let first = TestRealm.shared()
        async let second = TestRealm.shared()
        let (a, b) = try await (first, second)
        #expect(a === b)
        #expect(String(cString: getenv("KRB5_CONFIG")) == a.krb5ConfigPath)
        #expect(String(cString: getenv("KRB5CCNAME")) == a.environment["KRB5CCNAME"])
        #expect(a.extraRealmPorts["UNREACHABLE.TEST"] != nil)
        let user = "shared-\(UUID().uuidString.prefix(8))"
        try await a.addPrincipal(user, password: "pw")
        _ = try await a.kinit(user, password: "pw")
    }
}
