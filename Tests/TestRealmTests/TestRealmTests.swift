import Foundation
import Testing
@testable import TestRealm

/// Real MIT KDCs on loopback; every test owns its realm (except `shared()`), so they run in parallel.
@Suite struct TestRealmTests {
    @Test func startsAndStopsCleanly() async throws {
        let realm = try await TestRealm.start(.init(name: "LIFE.TEST"))
        let pid = try #require(await realm.kdcPID)
        #expect(kill(pid, 0) == 0)
        #expect(FileManager.default.fileExists(atPath: realm.krb5ConfigPath))
        #expect(realm.environment["KRB5_CONFIG"] == realm.krb5ConfigPath)
        #expect(realm.environment["KRB5CCNAME"]?.hasPrefix("FILE:" + realm.directory) == true)
        #expect(LoopbackPort.acceptsConnections(realm.kdcPort))
        await realm.shutdown()
        #expect(!FileManager.default.fileExists(atPath: realm.directory))
        #expect(kill(pid, 0) == -1 && errno == ESRCH, "krb5kdc \(pid) still exists")
        #expect(!LoopbackPort.acceptsConnections(realm.kdcPort))
        await realm.shutdown() // idempotent
    }

    @Test func kinitWithPassword() async throws {
        let realm = try await TestRealm.start()
        try await realm.addPrincipal("alice", password: "Secret-1")
        let ccache = try await realm.kinit("alice", password: "Secret-1")
        #expect(ccache.hasPrefix("FILE:" + realm.directory))
        let flags = try await realm.ticketFlags(ccache: ccache)
        #expect(flags.contains("F"))

        let error = await #expect(throws: TestRealmError.self) {
            _ = try await realm.kinit("alice", password: "wrong")
        }
        let result = try #require(error?.commandResult)
        #expect(result.command.first == "/usr/bin/kinit")
        #expect(result.exitStatus != 0)
        #expect(result.standardError.contains("Password incorrect"))
        await realm.shutdown()
    }

    @Test func keytabExportThenKinit() async throws {
        let realm = try await TestRealm.start()
        try await realm.addPrincipal("host/hosta.test", password: nil)
        try await realm.addPrincipal("bob", password: "pw-bob")
        let keytab = try await realm.exportKeytab(["host/hosta.test", "bob"])
        #expect(FileManager.default.fileExists(atPath: keytab))
        let ccache = try await realm.kinit("host/hosta.test", keytab: keytab)
        let list = try await realm.run("/usr/bin/klist", ["-c", ccache])
        #expect(list.standardOutput.contains("host/hosta.test@\(realm.name)"))
        // -norandkey: the password still works after export.
        _ = try await realm.kinit("bob", password: "pw-bob")
        await realm.shutdown()
    }

    @Test func disallowForwardableGivesNonForwardableTicket() async throws {
        let realm = try await TestRealm.start()
        try await realm.addPrincipal("carol", password: "pw", attributes: .init(forwardable: false))
        let ccache = try await realm.kinit("carol", password: "pw", forwardable: true)
        let flags = try await realm.ticketFlags(ccache: ccache)
        #expect(!flags.contains("F"), "flags \(flags)")
        try await realm.modifyPrincipal("carol", attributes: .init(forwardable: true))
        let again = try await realm.kinit("carol", password: "pw")
        #expect(try await realm.ticketFlags(ccache: again).contains("F"))
        await realm.shutdown()
    }

    @Test func principalWithSpaces() async throws {
        let realm = try await TestRealm.start()
        let spn = "Microsoft Virtual System Migration Service/hostb.test"
        try await realm.addPrincipal(spn)
        try await realm.addPrincipal("dave", password: "p \"w\" d")
        let info = try await realm.principalInfo(spn)
        #expect(info.contains("Principal: \(spn)@\(realm.name)"))
        let ccache = try await realm.kinit("dave", password: "p \"w\" d")
        let result = try await realm.kvno([spn], ccache: ccache)
        #expect(result.standardOutput.contains("kvno = "))
        let keytab = try await realm.exportKeytab([spn])
        _ = try await realm.kinit(spn, keytab: keytab)
        await realm.shutdown()
    }

    @Test func twoRealmsConcurrently() async throws {
        async let first = TestRealm.start(.init(name: "ONE.TEST", domains: ["one.test"]))
        async let second = TestRealm.start(.init(name: "TWO.TEST", domains: ["two.test"]))
        let (one, two) = try await (first, second)
        #expect(one.kdcPort != two.kdcPort)
        #expect(one.directory != two.directory)
        try await one.addPrincipal("u", password: "pw1")
        try await two.addPrincipal("u", password: "pw2")
        _ = try await one.kinit("u", password: "pw1")
        _ = try await two.kinit("u", password: "pw2")
        await #expect(throws: TestRealmError.self) { _ = try await one.kinit("u", password: "pw2") }
        await one.shutdown()
        await two.shutdown()
    }

    @Test func stopAndStartKDC() async throws {
        let realm = try await TestRealm.start(.init(extraRealms: ["DOWN.TEST"]))
        try await realm.addPrincipal("erin", password: "pw")
        let firstPID = try #require(await realm.kdcPID)
        await realm.stopKDC()
        #expect(await realm.kdcPID == nil)
        #expect(kill(firstPID, 0) == -1)
        let error = await #expect(throws: TestRealmError.self) { _ = try await realm.kinit("erin", password: "pw") }
        #expect(error?.commandResult?.standardError.contains("Cannot contact any KDC") == true)
        try await realm.startKDC()
        #expect(await realm.kdcPID != nil)
        _ = try await realm.kinit("erin", password: "pw")
        // The extra realm's KDC refuses connections at once.
        let unreachable = await #expect(throws: TestRealmError.self) {
            _ = try await realm.kinit("someone@DOWN.TEST", password: "pw")
        }
        #expect(unreachable?.commandResult?.standardError.contains("Cannot contact any KDC") == true)
        await realm.shutdown()
    }

    @Test func shortLifetimes() async throws {
        let realm = try await TestRealm.start(.init(maxTicketLifetime: .seconds(3600)))
        try await realm.addPrincipal("frank", password: "pw", attributes: .init(maxTicketLifetime: .seconds(30)))
        let info = try await realm.principalInfo("frank")
        #expect(info.contains("Maximum ticket life: 0 days 00:00:30"))
        let ccache = try await realm.kinit("frank", password: "pw")
        let list = try await realm.run("/usr/bin/klist", ["-c", ccache]).standardOutput
        #expect(!list.isEmpty)
        await realm.shutdown()
    }

    @Test func failedKadminIsTyped() async throws {
        let realm = try await TestRealm.start()
        let error = await #expect(throws: TestRealmError.self) { try await realm.modifyPrincipal("nosuch", attributes: .init(okAsDelegate: true)) }
        #expect(error?.commandResult?.command.first == "/usr/sbin/kadmin.local")
        #expect(error?.commandResult?.standardError.contains("does not exist") == true)
        await realm.shutdown()
    }
}
