import Foundation
import Testing
import TestRealm

/// Many tests share one realm: concurrent kadmin and kinit calls must not trip over each other.
@Suite struct ConcurrencyTests {
    @Test(arguments: [KDCBackend.db2, .ldap])
    func concurrentPrincipalsAndTickets(backend: KDCBackend) async throws {
        let realm = try await TestRealm.start(.init(backend: backend))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<12 {
                group.addTask {
                    let name = "par\(index)/host\(index).test"
                    try await realm.addPrincipal(name, password: "pw-\(index)")
                    let keytab = try await realm.exportKeytab([name])
                    _ = try await realm.kinit(name, password: "pw-\(index)")
                    _ = try await realm.kinit(name, keytab: keytab)
                    try await realm.modifyPrincipal(name, attributes: .init(okAsDelegate: true))
                }
            }
            try await group.waitForAll()
        }
        await realm.shutdown()
    }
}
