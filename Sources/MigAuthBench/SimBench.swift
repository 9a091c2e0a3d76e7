import ClusterAudit
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
        var auditHosts = 1_000
        var ldifHosts = 10_000
        var cluster = 100
        var i = 0
        while i < arguments.count {
            let value = i + 1 < arguments.count ? Int(arguments[i + 1]) : nil
            switch (arguments[i], value) {
            case ("--hosts", let v?): hosts = v
            case ("--decisions", let v?): decisions = v
            case ("--accounts", let v?): accounts = v
            case ("--audit-hosts", let v?): auditHosts = v
            case ("--ldif-hosts", let v?): ldifHosts = v
            case ("--cluster", let v?): cluster = v
            default:
                print("usage: migauth-bench sim [--hosts N] [--decisions N] [--accounts N] [--audit-hosts N] [--ldif-hosts N] [--cluster N]")
                return
            }
            i += 2
        }
        decisionRate(hosts: hosts, decisions: decisions)
        try ldifImport(accounts: accounts)
        try audit(hosts: auditHosts)
        try ldifAudit(hosts: ldifHosts, cluster: cluster)
    }

    /// `ClusterAudit.run` on `World.synthetic(hostCount:)`: every ordered pair × 4 variants, with fixes.
    static func audit(hosts: Int) throws {
        let world = World.synthetic(hostCount: hosts)
        let start = ContinuousClock.now
        let audit = try ClusterAudit.run(world, options: .init(user: "admin"))
        let seconds = secondsSince(start)
        let textStart = ContinuousClock.now
        let text = audit.text
        let textSeconds = secondsSince(textStart)
        print("sim.audit hosts=\(hosts) pairs=\(hosts * (hosts - 1)) verdicts=\(audit.decisions) blocked=\(audit.blockedVerdicts) delegation-accounts=\(audit.delegationFixes.count)")
        print(String(format: "  audit %.3f s (%.0f verdicts/s); text report %.3f s (%d bytes)", seconds,
                     Double(audit.decisions) / seconds, textSeconds, text.utf8.count))
    }

    /// An LDIF export with `hosts` Hyper-V computer accounts: import, one host per computer, and an
    /// audit of the first `cluster` of them (as `migauth audit --ldif … --hosts …` does).
    static func ldifAudit(hosts: Int, cluster: Int) throws {
        let accounts = hosts * 100 / 19 + 1
        let text = syntheticLDIF(accounts: accounts)
        let groups = max(1, accounts / 100)
        let start = ContinuousClock.now
        let directory = try Directory.importLDIF(text, file: "<synthetic>")
        let importSeconds = secondsSince(start)
        var world = World(directory: directory)
        try world.addHostsForComputers()
        let hostsSeconds = secondsSince(start) - importSeconds
        let names = world.allHosts.filter(\.hypervisorInstalled).prefix(cluster).map(\.name)
        // A member of Domain Admins in the synthetic export (user0 is marked sensitive).
        let user = "CONTOSO\\user\(groups * 10)"
        let auditStart = ContinuousClock.now
        let audit = try ClusterAudit.run(world, options: .init(user: user, hosts: names, assumeHostsReady: true))
        let auditSeconds = secondsSince(auditStart)
        print("sim.ldif-audit computers=\(world.allHosts.count) bytes=\(text.utf8.count) cluster=\(audit.hosts.count) verdicts=\(audit.decisions) blocked=\(audit.blockedVerdicts)")
        print(String(format: "  LDIF import %.3f s; hosts %.3f s; audit %.3f s; total %.3f s", importSeconds, hostsSeconds, auditSeconds,
                     secondsSince(start)))
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
        let seconds = secondsSince(start)
        print("sim.decisions hosts=\(hosts) decisions=\(decisions) successes=\(successes) (sanity \(ok)/16)")
        print(String(format: "  world build %.3f s; World.evaluate: %.0f decisions/s (%.0f ns each)", Double(buildTime.components.seconds) + Double(buildTime.components.attoseconds) / 1e18,
                     Double(decisions) / seconds, seconds / Double(decisions) * 1e9))

        // The same moves on a PreparedWorld: names resolved to ids once per world and per move.
        let prepStart = ContinuousClock.now
        let prepared = PreparedWorld(world)
        let prepTime = secondsSince(prepStart)
        let resolved = moves.compactMap { try? prepared.resolve($0) }
        guard resolved.count == moves.count else { print("  prepared: some moves did not resolve"); return }
        var verdicts = 0
        let decideStart = ContinuousClock.now
        for n in 0..<decisions where prepared.decide(resolved[n % resolved.count]).works { verdicts += 1 }
        let decideSeconds = secondsSince(decideStart)
        var outcomes = 0
        let evalStart = ContinuousClock.now
        for n in 0..<decisions {
            if let outcome = try? prepared.evaluate(resolved[n % resolved.count]), outcome.isSuccess { outcomes += 1 }
        }
        let evalSeconds = secondsSince(evalStart)
        print(String(format: "  PreparedWorld: prepare %.3f s; decide %.0f decisions/s (%.0f ns each, %d work); evaluate (full MoveOutcome) %.0f/s (%.0f ns each, %d succeed)",
                     prepTime, Double(decisions) / decideSeconds, decideSeconds / Double(decisions) * 1e9, verdicts,
                     Double(decisions) / evalSeconds, evalSeconds / Double(decisions) * 1e9, outcomes))
    }

    static func secondsSince(_ start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
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
