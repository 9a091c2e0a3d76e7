import Foundation
import Testing
@testable import TestRealm

/// Failure reporting, principal attributes and lifetimes.
@Suite struct RealmFailureAndAttributeTests {
    @Test func kdcThatCannotBindReportsLogTail() async throws {
        let realm = try await TestRealm.start()
        await realm.stopKDC()
        let held = try LoopbackPort.occupy(realm.kdcPort)
        defer { held.forEach(LoopbackPort.closeHeld) }
        let error = await #expect(throws: TestRealmError.self) { try await realm.startKDC() }
        guard case .kdcDidNotStart(let port, let reason, let logTail) = error else {
            Issue.record("unexpected \(String(describing: error))")
            await realm.shutdown()
            return
        }
        #expect(port == realm.kdcPort)
        #expect(reason.contains("exited"))
        #expect(logTail.contains("Address already in use"), "\(logTail)")
        #expect(await realm.kdcPID == nil)
        await realm.shutdown()
    }

    @Test func attributesReachThePrincipal() async throws {
        let realm = try await TestRealm.start()
        try await realm.addPrincipal("host/hosta.test", attributes: .init(
            okToAuthAsDelegate: true, okAsDelegate: true, requiresPreauth: true,
            maxTicketLifetime: .seconds(120), maxRenewableLifetime: .seconds(600)))
        let info = try await realm.principalInfo("host/hosta.test")
        let attributes = info.split(separator: "\n").first { $0.hasPrefix("Attributes:") } ?? ""
        #expect(attributes.contains("REQUIRES_PRE_AUTH"))
        #expect(attributes.contains("OK_AS_DELEGATE"))
        #expect(attributes.contains("OK_TO_AUTH_AS_DELEGATE"))
        #expect(info.contains("Maximum ticket life: 0 days 00:02:00"))
        #expect(info.contains("Maximum renewable life: 0 days 00:10:00"))

        try await realm.setAttributes(.init(okToAuthAsDelegate: false, okAsDelegate: false), for: "host/hosta.test")
        let changed = try await realm.principalInfo("host/hosta.test")
        #expect(!changed.contains("OK_AS_DELEGATE"))
        #expect(changed.contains("REQUIRES_PRE_AUTH"))
        await realm.shutdown()
    }

    @Test func realmAndPrincipalLifetimesCapTickets() async throws {
        let realm = try await TestRealm.start(.init(maxTicketLifetime: .seconds(300),
                                                    maxRenewableLifetime: .seconds(900)))
        try await realm.addPrincipal("gina", password: "pw")
        try await realm.addPrincipal("hank", password: "pw", attributes: .init(maxTicketLifetime: .seconds(20)))
        let gina = try #require(try await realm.tickets(ccache: realm.kinit("gina", password: "pw")).first)
        #expect(gina.server == "krbtgt/\(realm.name)@\(realm.name)")
        #expect(abs(gina.lifetime - 300) <= 2, "lifetime \(gina.lifetime)")
        #expect(gina.isForwardable)
        let hank = try #require(try await realm.tickets(ccache: realm.kinit("hank", password: "pw")).first)
        #expect(abs(hank.lifetime - 20) <= 2, "lifetime \(hank.lifetime)")
        let short = try #require(try await realm.tickets(
            ccache: realm.kinit("gina", password: "pw", forwardable: false, lifetime: .seconds(10))).first)
        #expect(abs(short.lifetime - 10) <= 2)
        #expect(!short.isForwardable)
        await realm.shutdown()
    }

    @Test func invalidRealmNameIsRejected() async throws {
        await #expect(throws: TestRealmError.self) { _ = try await TestRealm.start(.init(name: "BAD REALM")) }
        await #expect(throws: TestRealmError.self) { _ = try await TestRealm.start(.init(extraRealms: ["X\nY"])) }
    }

    @Test func kadminQuoting() {
        #expect(TestRealm.kadminQuoted("Microsoft Virtual System Migration Service/hostb.test")
                == "\"Microsoft Virtual System Migration Service/hostb.test\"")
        #expect(TestRealm.kadminQuoted("a\"b") == "\"a\"\"b\"")
        #expect(PrincipalAttributes(forwardable: false, okToAuthAsDelegate: true, maxTicketLifetime: .milliseconds(1500))
                    .kadminOptions == ["-allow_forwardable", "+ok_to_auth_as_delegate", "-maxlife", "2s"])
    }
}
