import Foundation
import Testing
import TestRealm

/// Many tests share one realm: concurrent kadmin and kinit calls must not trip over each other.
@Suite struct ConcurrencyTests {
    @Test(arguments: [KDCBackend.db2, .ldap])
    func concurrentPrincipalsAndTickets(backend: KDCBackend) async throws {
        let realm = try await TestRealm.start(.init(backend: backend))
        let done = try await withThrowingTaskGroup(of: [String].self) { group in
            for index in 0..<12 {
                group.addTask {
                    let name = "par\(index)/host\(index).test"
                    try await realm.addPrincipal(name, password: "pw-\(index)")
                    let keytab = try await realm.exportKeytab([name])
                    let byPassword = try await realm.kinit(name, password: "pw-\(index)")
                    let byKeytab = try await realm.kinit(name, keytab: keytab)
                    try await realm.modifyPrincipal(name, attributes: .init(okAsDelegate: true))
                    let info = try await realm.principalInfo(name)
                    var problems: [String] = []
                    for file in [keytab, String(byPassword.dropFirst("FILE:".count)), String(byKeytab.dropFirst("FILE:".count))]
                    where ((try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0) == 0 {
                        problems.append("\(name): \(file) is missing or empty")
                    }
                    if byPassword == byKeytab { problems.append("\(name): both kinits wrote \(byPassword)") }
                    if !info.contains("par\(index)/host\(index).test@") { problems.append("\(name): getprinc shows \(info)") }
                    if !info.contains("OK_AS_DELEGATE") { problems.append("\(name): ok-as-delegate not set") }
                    return problems
                }
            }
            var all: [[String]] = []
            for try await problems in group { all.append(problems) }
            return all
        }
        await realm.shutdown()
        #expect(done.count == 12)
        #expect(done.flatMap { $0 } == [])
    }
}
