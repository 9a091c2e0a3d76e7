import Directory
import Foundation
import MigrationRules

/// Simulation benchmarks: migration decisions per second on a large domain, and LDIF import.
///
/// `migauth-bench sim [--hosts N] [--decisions N] [--accounts N]` — build with `-c release`.
/// Single-threaded (one core). Figures go in BENCHMARKS.md, `## Simulation`.
enum SimBench {
    static func run(_ arguments: [String]) async throws {
        var hosts = 10_000
        var decisions = 2_000_000
        var accounts = 100_000
        var i = 0
        while i < arguments.count {
            let value = i + 1 < arguments.count ? Int(arguments[i + 1]) : nil
            switch (arguments[i], value) {
            case ("--hosts", let v?): hosts = v
            case ("--decisions", let v?): decisions = v
            case ("--accounts", let v?): accounts = v
            default:
                print("usage: migauth-bench sim [--hosts N] [--decisions N] [--accounts N]")
                return
            }
            i += 2
        }
        decisionRate(hosts: hosts, decisions: decisions)
        try ldifImport(accounts: accounts)
    }

    /// `World.evaluate` on the synthetic domain: each decision is a full rule run (P1–P5, N1, A1–A7, S1).
    static func decisionRate(hosts: Int, decisions: Int) {
        let buildStart = ContinuousClock.now
        let world = World.synthetic(hostCount: hosts)
        let buildTime = ContinuousClock.now - buildStart
        let moves = (0..<min(hosts, 4096)).map { World.syntheticMove($0, hostCount: hosts) }
        // Sanity: the benchmark's moves must authenticate, or we would time the failure path only.
        var ok = 0
        for m in moves.prefix(16) { if (try? world.evaluate(m))?.isSuccess == true { ok += 1 } }
        var successes = 0
        let start = ContinuousClock.now
        for n in 0..<decisions {
            if let outcome = try? world.evaluate(moves[n % moves.count]), outcome.isSuccess { successes += 1 }
        }
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print("sim.decisions hosts=\(hosts) decisions=\(decisions) successes=\(successes) (sanity \(ok)/16)")
        print(String(format: "  world build %.3f s; %.0f decisions/s (%.0f ns each)", Double(buildTime.components.seconds) + Double(buildTime.components.attoseconds) / 1e18,
                     Double(decisions) / seconds, seconds / Double(decisions) * 1e9))
    }

    /// Generates an LDIF export of `accounts` accounts in memory (users, computers, groups) and imports it.
    static func ldifImport(accounts: Int) throws {
        let text = syntheticLDIF(accounts: accounts)
        let start = ContinuousClock.now
        let directory = try Directory.importLDIF(text, file: "<synthetic>")
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let objects = directory.domainOrder.reduce(0) { $0 + (directory.replica(of: $1)?.objectCount ?? 0) }
        print("sim.ldif accounts=\(accounts) bytes=\(text.utf8.count) objects=\(objects)")
        print(String(format: "  import %.3f s (%.0f accounts/s)", seconds, Double(accounts) / seconds))
    }

    /// `accounts` entries in contoso.com: 80% users, 19% computers (with delegation), 1% groups.
    static func syntheticLDIF(accounts: Int) -> String {
        var s = "version: 1\n\n"
        s.reserveCapacity(accounts * 400)
        s += "dn: DC=contoso,DC=com\nobjectClass: top\nobjectClass: domain\nobjectClass: domainDNS\ndc: contoso\nname: contoso\n\n"
        s += "dn: CN=DC01,OU=Domain Controllers,DC=contoso,DC=com\nobjectClass: computer\ncn: DC01\nsAMAccountName: DC01$\nuserAccountControl: 532480\ndNSHostName: DC01.contoso.com\n\n"
        let computers = accounts * 19 / 100
        let groups = max(1, accounts / 100)
        let users = accounts - computers - groups
        for u in 0..<users {
            s += "dn: CN=user\(u),CN=Users,DC=contoso,DC=com\nobjectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\nobjectClass: user\ncn: user\(u)\nsAMAccountName: user\(u)\nuserPrincipalName: user\(u)@contoso.com\nuserAccountControl: \(u % 50 == 0 ? 1_049_088 : 512)\n\n"
        }
        for c in 0..<computers {
            let next = (c + 1) % max(computers, 1)
            s += "dn: CN=HV\(c),CN=Computers,DC=contoso,DC=com\nobjectClass: top\nobjectClass: computer\ncn: HV\(c)\nsAMAccountName: HV\(c)$\ndNSHostName: HV\(c).contoso.com\nuserAccountControl: 4096\noperatingSystem: Windows Server 2012 R2 Datacenter\nservicePrincipalName: HOST/HV\(c)\nservicePrincipalName: HOST/HV\(c).contoso.com\nservicePrincipalName: Microsoft Virtual System Migration Service/HV\(c)\nservicePrincipalName: Microsoft Virtual System Migration Service/HV\(c).contoso.com\nmsDS-AllowedToDelegateTo: Microsoft Virtual System Migration Service/HV\(next).contoso.com\nmsDS-AllowedToDelegateTo: cifs/HV\(next).contoso.com\n\n"
        }
        for g in 0..<groups {
            let name = g == 0 ? "Domain Admins" : "Group\(g)"
            s += "dn: CN=\(name),CN=Users,DC=contoso,DC=com\nobjectClass: top\nobjectClass: group\ncn: \(name)\nsAMAccountName: \(name)\n"
            for m in stride(from: g, to: users, by: max(groups, 1) * 10) { s += "member: CN=user\(m),CN=Users,DC=contoso,DC=com\n" }
            s += "\n"
        }
        return s
    }
}
