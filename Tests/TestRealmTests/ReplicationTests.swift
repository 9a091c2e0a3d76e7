import Foundation
import Testing
@testable import TestRealm

/// Two domain controllers of one realm: two slapds replicating with syncrepl, two KDCs each on
/// its own loopback address reading only its own slapd.
@Suite struct ReplicationTests {
    static let target = "Microsoft Virtual System Migration Service/hostb.repl.test"

    /// S4U2Self then S4U2Proxy as host/hosta at the KDC that `run` reaches (its krb5.conf lists one KDC).
    static func delegate(keytab: String, ccache: String,
                         _ run: (String, [String]) async throws -> CommandResult) async throws -> CommandResult {
        _ = try await run("/usr/bin/kinit", ["-c", ccache, "-f", "-k", "-t", keytab, "host/hosta.repl.test"])
        return try await run("/usr/bin/kvno", ["-c", ccache, "-k", keytab, "-U", "alice", "-P", target])
    }

    @Test("replication stopped: a delegation written on DC01 is not seen by DC02's KDC until DC02 pulls it, and back")
    func otherKDCAnswersTheOldWayUntilReplication() async throws {
        var configuration = TestRealm.Configuration(name: "REPL.TEST", backend: .ldap, domains: ["repl.test"])
        configuration.replicated = true
        let started = ContinuousClock.now
        try await TestRealm.withRealm(configuration) { realm in
            try await realm.addPrincipal("alice", password: "alice-pw")
            try await realm.addPrincipal("host/hosta.repl.test", attributes: .init(okToAuthAsDelegate: true))
            try await realm.addPrincipal(Self.target)
            let keytab = try await realm.exportKeytab(["host/hosta.repl.test"])
            let dc02 = try await RealmReplica.start(of: realm, name: "DC02", address: "127.0.0.2", serverID: 2)
            print("ReplicationTests: realm + second domain controller set up in \(ContinuousClock.now - started)")
            let outcome = await Result(catching: { () async throws -> Void in
                #expect(dc02.ldapConnection.uri.hasPrefix("ldap://127.0.0.2:"))
                #expect(try String(contentsOfFile: dc02.krb5ConfigPath, encoding: .utf8).contains("kdc = 127.0.0.2:\(dc02.kdcPort)"))
                let dc01Run = { (p: String, a: [String]) in try await realm.run(p, a, check: false) }
                let dc02Run = { (p: String, a: [String]) in try await dc02.run(p, a, check: false) }
                let cc = { (dir: String) in "FILE:\(dir)/ccaches/cc-\(UUID().uuidString)" }

                // The replica got the principals by syncrepl at start: its own KDC knows the host.
                let before = try await Self.delegate(keytab: keytab, ccache: cc(dc02.directory), dc02Run)
                #expect(before.standardError.contains("KDC can't fulfill requested option"), "\(before)")

                // Written on DC01's slapd: DC01's KDC allows at once; DC02's KDC still refuses — its
                // own directory has no such value, so its answer is the old one.
                let spn = Self.target + "@REPL.TEST"
                try await realm.setAllowedToDelegate("host/hosta.repl.test", targets: [spn])
                let dc01Allows = try await Self.delegate(keytab: keytab, ccache: realm.newCCacheName(), dc01Run)
                #expect(dc01Allows.succeeded, "\(dc01Allows)\n\(realm.kdcLogTail())")
                #expect(try await dc02.allowedToDelegate("host/hosta.repl.test") == [])
                let dc02Refuses = try await Self.delegate(keytab: keytab, ccache: cc(dc02.directory), dc02Run)
                #expect(!dc02Refuses.succeeded)
                #expect(dc02Refuses.standardError.contains("KDC can't fulfill requested option"), "\(dc02Refuses)")
                #expect(!dc02.kdcLogTail(lines: 200).contains("CONSTRAINED-DELEGATION s4u-client=alice@REPL.TEST"))
                #expect(dc02.kdcLogTail(lines: 200).contains("TGS_REQ"), "the refusal is DC02's KDC's own answer")

                // Replication DC01 → DC02 (syncrepl refresh): now DC02's KDC allows.
                try await dc02.pull(from: realm)
                #expect(try await dc02.allowedToDelegate("host/hosta.repl.test") == [spn])
                let dc02Allows = try await Self.delegate(keytab: keytab, ccache: cc(dc02.directory), dc02Run)
                #expect(dc02Allows.succeeded, "\(dc02Allows)\n\(dc02.kdcLogTail())")
                #expect(dc02.kdcLogTail(lines: 50).contains("CONSTRAINED-DELEGATION s4u-client=alice@REPL.TEST"))

                // The reverse: removed on DC02; DC01's KDC keeps allowing until DC01 pulls from DC02.
                try await dc02.setAllowedToDelegate("host/hosta.repl.test", targets: [])
                let dc02RefusesAgain = try await Self.delegate(keytab: keytab, ccache: cc(dc02.directory), dc02Run)
                #expect(!dc02RefusesAgain.succeeded)
                let dc01Still = try await Self.delegate(keytab: keytab, ccache: realm.newCCacheName(), dc01Run)
                #expect(dc01Still.succeeded, "\(dc01Still)")
                try await realm.pullDirectory(from: dc02)
                #expect(try await realm.allowedToDelegate("host/hosta.repl.test") == [])
                let dc01Refuses = try await Self.delegate(keytab: keytab, ccache: realm.newCCacheName(), dc01Run)
                #expect(!dc01Refuses.succeeded, "\(dc01Refuses)")
                #expect(dc01Refuses.standardError.contains("KDC can't fulfill requested option"))
            })
            await dc02.shutdown()
            try outcome.get()
        }
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
