import Foundation
import Testing
@testable import TestRealm

/// Two realms with a two-way trust (A5), and a third with none (P5), on real MIT KDCs (LDAP back end).
@Suite struct TrustTests {
    @Test("a two-way trust lets alice reach the other realm's service, but no KDC grants cross-realm S4U2Proxy (A5); no trust, no path (P5)")
    func crossRealmDelegationIsRefused() async throws {
        let started = ContinuousClock.now
        try await TestRealm.withRealm(.init(name: "WEST.TEST", backend: .ldap, domains: ["west.test"])) { west in
            try await TestRealm.withRealm(.init(name: "EAST.TEST", backend: .ldap, domains: ["east.test"])) { east in
                try await TestRealm.withRealm(.init(name: "FAR.TEST", backend: .ldap, domains: ["far.test"])) { far in
                    try await west.trust(east, twoWay: true)
                    print("TrustTests: three realms and a two-way trust set up in \(ContinuousClock.now - started)")
                    let service = "Microsoft Virtual System Migration Service/hostb.east.test"
                    let farService = "Microsoft Virtual System Migration Service/hostc.far.test"
                    try await west.addPrincipal("alice", password: "alice-pw")
                    try await west.addPrincipal("host/hosta.west.test", attributes: .init(okToAuthAsDelegate: true))
                    try await east.addPrincipal(service)
                    try await far.addPrincipal(farService)
                    let keytab = try await west.exportKeytab(["host/hosta.west.test"])
                    // The delegation list names the other realm's service: MIT applies it only within one realm.
                    try await west.setAllowedToDelegate("host/hosta.west.test", targets: [service + "@EAST.TEST"])

                    let config = west.directory + "/trust-krb5.conf"
                    try TestRealm.trustConfiguration(realms: [west, east, far],
                                                     capaths: [("WEST.TEST", "EAST.TEST"), ("EAST.TEST", "WEST.TEST")])
                        .write(toFile: config, atomically: true, encoding: .utf8)
                    let run = { (p: String, a: [String]) in try await west.run(p, a, krb5Config: config, check: false) }

                    // The trust works: alice (WEST) gets a ticket for EAST's migration service.
                    let cc = west.newCCacheName()
                    _ = try await west.run("/usr/bin/kinit", ["-c", cc, "alice@WEST.TEST"], input: "alice-pw\n")
                    let direct = try await run("/usr/bin/kvno", ["-c", cc, service + "@EAST.TEST"])
                    #expect(direct.succeeded, "\(direct)\n\(east.kdcLogTail())")

                    // A5: host/hosta acting for alice (S4U2Self, then S4U2Proxy to EAST): refused.
                    let hostCC = west.newCCacheName()
                    _ = try await run("/usr/bin/kinit", ["-c", hostCC, "-f", "-k", "-t", keytab, "host/hosta.west.test@WEST.TEST"])
                    // The host's cross-realm TGT (the trust's krbtgt/EAST.TEST@WEST.TEST), so the request reaches EAST's KDC.
                    let crossTGT = try await run("/usr/bin/kvno", ["-c", hostCC, "krbtgt/EAST.TEST@WEST.TEST"])
                    #expect(crossTGT.succeeded, "\(crossTGT)")
                    let proxy = try await run("/usr/bin/kvno", ["-c", hostCC, "-k", keytab, "-U", "alice", "-P", service + "@EAST.TEST"])
                    #expect(!proxy.succeeded, "\(proxy)")
                    // Seen here (MIT 1.20): the client sends the S4U2Proxy request to EAST's KDC with its own
                    // realm's TGT, and EAST's KDC refuses it (UNKNOWN SERVER krbtgt/WEST.TEST@WEST.TEST), so the
                    // client reports "Server … not found in Kerberos database … constrained delegation failed"
                    // (KDC_ERR_S_PRINCIPAL_UNKNOWN), not KDC_ERR_BADOPTION; either way no KDC grants it.
                    #expect(proxy.standardError.contains("constrained delegation failed"), "\(proxy)\nWEST: \(west.kdcLogTail(lines: 6))\nEAST: \(east.kdcLogTail(lines: 6))")
                    #expect(east.kdcLogTail(lines: 200).contains("UNKNOWN SERVER: server='krbtgt/WEST.TEST@WEST.TEST'"))
                    #expect(!west.kdcLogTail(lines: 200).contains("CONSTRAINED-DELEGATION"))
                    #expect(!east.kdcLogTail(lines: 200).contains("CONSTRAINED-DELEGATION"))

                    // P5: no trust with FAR.TEST — no path: WEST's KDC has no krbtgt/FAR.TEST.
                    let unrelated = try await run("/usr/bin/kvno", ["-c", cc, farService + "@FAR.TEST"])
                    #expect(!unrelated.succeeded)
                    #expect(unrelated.standardError.contains("not found in Kerberos database"), "\(unrelated)")
                }
            }
        }
    }
}
