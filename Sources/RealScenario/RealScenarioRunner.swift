import Directory
import Foundation
import Hosts
import MigrationRules
import MigrationService
import RealmProvisioning
import Scenario
import TestRealm
import Synchronization
import WindowsStatus

/// Replays a scenario against a real MIT KDC (LDAP back end) provisioned from the scenario's world,
/// and compares each move's real outcome with the simulated one. See docs/real-scenarios.md.
///
/// Per step: the simulation applies it first (`Environment.apply`); then the real side follows —
/// sign-ons become `kinit`s into the host's ccache, purges and restarts drop ccaches, every accepted
/// step re-provisions the realm (a diff), rewrites the hosts' configurations and SIGHUPs their
/// daemons (`migauth serve`, one per Hyper-V host), and a move runs `migauth migrate` as the
/// right process with the realm's environment.
package struct RealScenarioRunner: Sendable {
    /// The `migauth` executable (the running one: `/proc/self/exe`).
    package var executable: String

    package init(executable: String) { self.executable = executable }

    /// Real lifetime of a host's own TGT in a scenario that ends one by `advance-clock`: the
    /// model's ticket lifetime (10 hours) maps to it, and `advance-clock` past a ticket's end waits
    /// for the real end. Other scenarios get the model's own lifetime. The steps before the end
    /// have `lifetime - 30 s`, not the whole lifetime: a daemon's acquisition with its client keytab
    /// (every Kerberos sign-on) replaces a TGT that ends within 30 s (MIT, ticket 7976), and the new
    /// ticket ends the kept answers early. 60 s left 30 s, which a loaded CI run overran once
    /// (2026-12-03: the kept refusal of `a3-expiry-without-purge.yaml` became a success).
    package static let hostTicketLifetime: Duration = .seconds(120)

    /// The real host TGT lifetime for `scenario`: ``hostTicketLifetime`` when replaying its model
    /// shows an `advance-clock` step ending a host's valid TGT, else the model's own ticket lifetime
    /// (`World.ticketLifetime`), so that no real ticket ends early however slow the machine is.
    package static func hostTicketLifetime(for scenario: Scenario) -> Duration {
        var env = scenario.initialEnvironment()
        for step in scenario.steps {
            let before = env.world
            _ = env.apply(step.action)
            if case .advanceClock = step.action, !hostsWhoseTicketEnded(before: before, after: env.world).isEmpty {
                return hostTicketLifetime
            }
        }
        return .seconds(scenario.world.ticketLifetime.seconds)
    }

    /// The Hyper-V hosts that held a valid TGT in `before` and hold none in `after`.
    static func hostsWhoseTicketEnded(before: World, after: World) -> [Hosts.SimulatedHost] {
        after.allHosts.filter { h in
            h.hypervisorInstalled && before.host(h.name)?.tickets.validTGT(at: before.now) != nil
                && h.tickets.validTGT(at: after.now) == nil
        }
    }

    /// Call once before the first ``run(_:)`` in a program (`migauth scenario run --real` does):
    /// a SIGINT, SIGTERM or SIGHUP then stops the realms' daemons and removes their directories
    /// (users' passwords, keytabs, the KDC stash, the LDAP root password) before the process ends,
    /// and directories a killed earlier run left (SIGKILL cannot be caught) are removed now — only
    /// those `TestRealm` created and marked with an owner that no longer runs. Returns those paths.
    @discardableResult
    package static func prepareProcess(temporaryDirectory: String? = nil) -> [String] {
        TestRealm.removeDirectoriesOnSignals()
        return TestRealm.removeStaleDirectories(in: temporaryDirectory)
    }

    /// Runs one scenario; never throws (set-up failures are in ``RealScenarioReport/error``).
    package func run(_ scenario: Scenario) async -> RealScenarioReport {
        var report = RealScenarioReport(name: scenario.name, file: scenario.file, steps: [])
        let setUpStarted = ContinuousClock.now
        let realms: Realms
        do { realms = try await Realms.start(for: scenario.world) } catch {
            report.error = "the realm did not start: \(error)"
            return report
        }
        do {
            // VMs moved together must still be transferring when the next move is accepted (rule N2).
            var sizes: [String: Int] = [:]
            for case .moves(let specs) in scenario.steps.map(\.action) {
                for spec in specs { sizes[spec.vm.lowercased()] = 64 << 20 }
            }
            let lab = try await RealLab.start(realms: realms, world: scenario.world, executable: executable, vmFileSizes: sizes,
                                              hostTicketLifetime: Self.hostTicketLifetime(for: scenario))
            report.setUpSeconds = (ContinuousClock.now - setUpStarted) / .milliseconds(1) / 1000
            report.realmCount = realms.byDomain.count
            var replicaCount = 0
            for c in realms.controllers.all { replicaCount += await c.allReplicas.count }
            report.domainControllerCount = realms.byDomain.count + replicaCount
            var env = scenario.initialEnvironment()
            for (i, step) in scenario.steps.enumerated() {
                let before = env.world
                let sim = env.apply(step.action)
                var r = RealStepReport(index: i + 1, label: step.label, action: step.action.summary, mode: .applied,
                                       reason: nil, simulated: OutcomeSummary(sim), real: nil, mismatches: [])
                switch step.action {
                case .move(let spec):
                    let decision = await lab.move(spec, before: before, sim: sim)
                    r.mode = decision.mode
                    r.reason = decision.reason
                    r.real = decision.real
                    if let real = decision.real { r.mismatches = r.simulated.differences(from: real) }
                case .moves(let specs):
                    let decision = await lab.moves(specs, before: before, sim: sim)
                    r.mode = decision.mode
                    r.reason = decision.reason
                    r.real = decision.real
                    if let real = decision.real { r.mismatches = decision.mismatches ?? r.simulated.differences(from: real) }
                    if decision.mode == .compared { r.unmetExpectations = decision.parts.unmet(step.expectations) }
                default:
                    if sim.result != .error { try await lab.follow(step.action, world: env.world, before: before) }
                }
                r.expected = step.expectations.map(\.description)
                if r.mode != .compared {
                    r.unmetExpectations = sim.unmet(step.expectations)
                } else if case .move = step.action, let real = r.real, let e = step.expectations.first {
                    r.unmetExpectations = real.unmet(e, simulatedRules: r.simulated.rules)
                }
                try await lab.sync(env.world, after: step.action)
                report.steps.append(r)
            }
            await lab.daemons.stop()
        } catch {
            report.error = "real side failed: \(error)"
        }
        await realms.shutdown()
        return report
    }
}

/// One MIT realm (LDAP back end) per domain of the world, the world's trusts as cross-realm
/// `krbtgt` principals (two-way: both directions; one-way: the trusted domain's users reach the
/// trusting domain), and the provisioner of each.
struct Realms: Sendable {
    let first: TestRealm
    /// By domain (lower-cased DNS name).
    let byDomain: [String: TestRealm]
    let provisioners: [String: RealmProvisioner]
    let firstDomain: String
    /// (from realm, to realm): `krbtgt/TO@FROM` exists, so FROM's users get tickets in TO.
    let paths: [(String, String)]
    /// Domains with several DCs: their replicas (filled in by ``RealLab/start``, after provisioning).
    let controllers = ControllerRegistry()

    static func start(for world: World) async throws -> Realms {
        let domains = world.directory.domainOrder
        let firstDomain = domains.first ?? ""
        let severalDCs = { (d: String) in (world.directory.domain(d)?.controllerOrder.count ?? 0) > 1 }
        let first = try await RealmProvisioner.startRealm(for: world, replicated: severalDCs(firstDomain))
        var byDomain = [firstDomain: first]
        do {
            for d in domains.dropFirst() {
                byDomain[d] = try await RealmProvisioner.startRealm(for: world, domain: d, replicated: severalDCs(d))
            }
            // Directed paths (FROM's users reach TO: `krbtgt/TO@FROM`), each once: both domains of a
            // trust may hold its object (an LDIF export has one on each side).
            var paths: [(String, String)] = []
            func add(_ from: TestRealm, _ to: TestRealm) async throws {
                guard !paths.contains(where: { $0 == (from.name, to.name) }) else { return }
                try await from.trust(to, twoWay: false)
                paths.append((from.name, to.name))
            }
            for t in world.directory.trusts {
                guard let a = byDomain[t.domain], let b = byDomain[t.partner], a.name != b.name else { continue }
                // `t.domain` trusts `t.partner` (outbound): the partner's users reach t.domain.
                switch t.direction {
                case .bidirectional:
                    try await add(a, b)
                    try await add(b, a)
                case .outbound: try await add(b, a)
                case .inbound: try await add(a, b)
                }
            }
            var provisioners: [String: RealmProvisioner] = [:]
            for (d, r) in byDomain { provisioners[d] = RealmProvisioner(realm: r, domain: d == firstDomain ? nil : d) }
            return Realms(first: first, byDomain: byDomain, provisioners: provisioners, firstDomain: firstDomain, paths: paths)
        } catch {
            for r in byDomain.values { await r.shutdown() }
            throw error
        }
    }

    func shutdown() async {
        for c in controllers.all { await c.shutdown() }
        for r in byDomain.values { await r.shutdown() }
    }

    /// A host's krb5.conf when there are several realms: its own realm first (the default), the
    /// realms it has a path to or from, `[domain_realm]` for those, `[capaths]` for the direct paths.
    /// A realm without a trust is not listed: its KDC cannot be found (rule P5). `kdc`: the host's
    /// own realm's KDC when its logon DC is a replica (`address:port`).
    func hostKrb5Config(domain: String, kdc: String? = nil) -> String? {
        guard let own = byDomain[domain] else { return nil }
        let partners = Set(paths.filter { $0.0 == own.name || $0.1 == own.name }.flatMap { [$0.0, $0.1] })
        let others = byDomain.values.filter { $0.name != own.name && partners.contains($0.name) }.sorted { $0.name < $1.name }
        return TestRealm.trustConfiguration(realms: [own] + others,
                                            capaths: paths.filter { partners.contains($0.0) && partners.contains($0.1) },
                                            kdcs: kdc.map { [own.name: $0] } ?? [:])
    }
}

/// The real side of one scenario: realm, provisioner, host layout, users' ccaches.
struct RealLab {
    let realm: TestRealm
    let realms: Realms
    let provisioner: RealmProvisioner
    let layout: HostLayout
    let executable: String
    let domain: String
    let daemons: HostDaemons
    /// When each host's real TGT ends (``newHostTicket(_:)``).
    let hostTickets: HostTicketEnds

    /// The realm of `domain` (nil: none was started for it).
    func realm(ofDomain domain: String?) -> TestRealm? { domain.flatMap { realms.byDomain[$0] } }

    /// The realm of a host of the layout (the first realm for others).
    func realm(ofMachine machine: String) -> TestRealm {
        layout.entry(machine).flatMap { realm(ofDomain: $0.domain) } ?? realm
    }

    /// Runs a program as `machine` would: its realm's environment and, with several realms, its krb5.conf.
    func run(on machine: String, _ arguments: [String], realmOf: TestRealm? = nil) async throws -> CommandResult {
        let r = realmOf ?? realm(ofMachine: machine)
        if let conf = layout.entry(machine)?.krb5Config {
            return try await r.run(executable, arguments, krb5Config: conf, check: false)
        }
        return try await r.run(executable, arguments, check: false)
    }

    /// Why a step is decided by the simulation alone.
    enum Reason {
        static let multiDomain = "a domain of the move (source, destination, where it starts, the user's) has no realm in the real run"
        static let credSSPStorage = "CredSSP storage moves: the daemon moves VMs only (the probe speaks Kerberos)"
        static let protocolTransition = "A2b: a 2016+ source reached by WinRM — protocol transition (S4U2Self, then S4U2Proxy) run alone"
        static let osGeneration = "OS generations (P4) on a storage move or a remotely managed 2016+ source: the Kerberos exchange alone has no VM offer"
        static let noHypervisor = "P3 no Hyper-V on the destination: daemons run on Hyper-V hosts only"
        static let notStarted = "refused before any host acts (no sign-on where it is started, unknown VM)"
        static let storage = "storage moves: the daemon moves VMs only; the Kerberos exchange (S4U2Proxy to cifs too) runs alone"
    }

    static func start(realms: Realms, world: World, executable: String, vmFileSizes: [String: Int],
                      hostTicketLifetime: Duration) async throws -> RealLab {
        let realm = realms.first
        let domain = realms.firstDomain
        guard let provisioner = realms.provisioners[domain] else { throw TestRealmError.invalidArgument("no realm for \(domain)") }
        for p in realms.provisioners.values { try await p.provision(world) }
        // More DCs: replicas of the provisioned directory, each with its own KDC; then each DC's
        // delegation lists as the model's replicas hold them at the start.
        var addressIndex = 10
        for d in world.directory.domainOrder {
            guard let r = realms.byDomain[d],
                  let dcs = try await DomainControllers.start(domain: d, world: world, realm: r, addressIndex: &addressIndex) else { continue }
            realms.controllers.add(dcs, domain: d)
            await realms.provisioners[d]?.adopt(replicas: await dcs.allReplicas)
            try await dcs.sync(world, initial: true)
        }
        let layout = HostLayout(world: world, root: realm.directory + "/hosts", vmFileSizes: vmFileSizes)
        if realms.byDomain.count > 1 {
            for (d, r) in realms.byDomain { try await layout.prepare(realm: r, domain: d) }
        } else {
            try await layout.prepare(realm: realm)
        }
        for e in layout.entries {
            // Its realm's KDC is its logon DC's.
            let logonDC = world.host(e.name)?.logonDC ?? ""
            let kdc = await realms.controllers.get(e.domain)?.kdc(of: logonDC)
            guard let path = e.krb5Config, let text = realms.hostKrb5Config(domain: e.domain, kdc: kdc) else { continue }
            do { try text.write(toFile: path, atomically: true, encoding: .utf8) } catch {
                throw TestRealmError.fileSystem(path: path, reason: "\(error)")
            }
        }
        try layout.write(world: world)
        let hypervisors = world.allHosts.filter { $0.hypervisorInstalled && realms.byDomain[$0.domain] != nil }.map(\.key)
        let hostTickets = HostTicketEnds(lifetime: hostTicketLifetime)
        for key in hypervisors { try await Self.newHostTicket(key, layout: layout, realms: realms, ends: hostTickets) }
        let daemons = try await HostDaemons.start(realms: realms.byDomain, fallback: realm, layout: layout,
                                                  keys: hypervisors, executable: executable)
        return RealLab(realm: realm, realms: realms, provisioner: provisioner, layout: layout, executable: executable,
                       domain: domain, daemons: daemons, hostTickets: hostTickets)
    }

    /// A new TGT for a host's computer account in its ccache (`kinit -k` with its client keytab,
    /// from its logon DC's KDC, lifetime ``HostTicketEnds/lifetime``): at the start, after a purge and on
    /// restart — what Windows does at boot and after `klist purge`.
    func newHostTicket(_ key: String) async throws {
        try await Self.newHostTicket(key, layout: layout, realms: realms, ends: hostTickets)
    }

    static func newHostTicket(_ key: String, layout: HostLayout, realms: Realms, ends: HostTicketEnds) async throws {
        guard let e = layout.entry(key), let r = realms.byDomain[e.domain] else { return }
        try? FileManager.default.removeItem(atPath: e.hostCCache)
        let arguments = ["-c", "FILE:" + e.hostCCache, "-f", "-l", "\(Int(ends.lifetime.components.seconds))s",
                         "-k", "-t", e.clientKeytab, r.qualified("host/\(e.fqdn)")]
        let started = ContinuousClock.now
        if let conf = e.krb5Config {
            _ = try await r.run("/usr/bin/kinit", arguments, krb5Config: conf, check: true)
        } else {
            _ = try await r.run("/usr/bin/kinit", arguments, check: true)
        }
        ends.set(key: e.key, end: started + ends.lifetime)
    }

    /// `advance-clock`: every host whose ticket the model let expire waits for its real ticket's end.
    func waitForExpiredTickets(before: World, after: World) async throws {
        let ends = RealScenarioRunner.hostsWhoseTicketEnded(before: before, after: after).compactMap { hostTickets.end(of: $0.key) }
        guard let latest = ends.max() else { return }
        try await Task.sleep(until: latest + .seconds(1.5), clock: .continuous)
    }

    /// Re-provisions the realm, rewrites configurations and VM files (all diffs) and reloads the
    /// daemons whose configuration changed.
    func sync(_ world: World, after action: ScenarioAction? = nil) async throws {
        for p in realms.provisioners.values { try await p.provision(world) }
        var written: (domain: String, dc: String)? = nil
        if case .delegation(let change)? = action, let d = world.directory.domainOfController(change.dc) {
            written = (d, change.dc)
        }
        for (d, dcs) in realms.controllers.byDomain {
            try await dcs.sync(world, written: written?.domain == d ? written?.dc : nil)
        }
        try await daemons.reload(layout.write(world: world))
    }

    /// Reproduces an accepted set-up step on the real hosts.
    func follow(_ action: ScenarioAction, world: World, before: World? = nil) async throws {
        switch action {
        case let .signOn(user, host, method, from):
            guard let name = userName(user, near: host, world: world), let d = userDomain(user, near: host, world: world),
                  let userRealm = realm(ofDomain: d), let password = await realms.provisioners[d]?.password(of: name) else { return }
            // Console, Remote Desktop and CredSSP shells leave the user's credentials on the host
            // (its ccache, and the password a CredSSP source passes on: a 0600 file the console
            // form and the CredSSP shell read); a Kerberos remote shell leaves them on the machine
            // it comes from.
            let machine = method.hasReusableCredentials ? host : (from ?? "")
            let cc = userCCache(machine, name)
            try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: String(cc.dropFirst(5))).deletingLastPathComponent().path,
                                                    withIntermediateDirectories: true)
            _ = try await userRealm.kinit(name, password: password, ccache: userCCache(machine, name))
            if method.hasReusableCredentials { try layout.writePassword(password, host: host, user: name) }
        case let .signOff(user, host):
            if let name = userName(user, near: host, world: world) {
                remove(userCCache(host, name))
                if let file = layout.passwordFile(host: host, user: name) { remove(file) }
            }
        case let .purgeTickets(host):
            if layout.entry(host) != nil { try await newHostTicket(host) }
        case let .restart(host):
            if let e = layout.entry(host) {
                remove(e.hostCCache)
                try? FileManager.default.removeItem(atPath: e.ccacheDirectory)
                try FileManager.default.createDirectory(atPath: e.ccacheDirectory, withIntermediateDirectories: true)
                if world.host(host)?.hypervisorInstalled == true { try await newHostTicket(host) }
                try await daemons.restart(e.key)
            }
        case .advanceClock:
            if let before { try await waitForExpiredTickets(before: before, after: world) }
        default:
            break   // settings and directory changes: `sync` re-provisions and rewrites configurations
        }
    }

    /// `FILE:` ccache of `user` on `machine` ("" = a client outside the scenario's hosts).
    func userCCache(_ machine: String, _ user: String) -> String {
        layout.userCCache(host: machine, user: user) ?? "FILE:\(layout.root)/client/\(user.lowercased()).cc"
    }

    func userName(_ user: String, near host: String?, world: World) -> String? {
        let d = host.flatMap { world.host($0)?.domain }
        guard let ref = world.directory.resolve(user, defaultDomain: d), realms.byDomain[ref.domain] != nil,
              let account = world.directory.user(ref) else { return nil }
        return PrincipalNames.user(account)
    }

    /// The domain of a user as resolved near `host` (only domains with a realm).
    func userDomain(_ user: String, near host: String?, world: World) -> String? {
        let d = host.flatMap { world.host($0)?.domain }
        guard let ref = world.directory.resolve(user, defaultDomain: d), realms.byDomain[ref.domain] != nil else { return nil }
        return ref.domain
    }

    func remove(_ ccache: String) {
        let path = ccache.hasPrefix("FILE:") ? String(ccache.dropFirst(5)) : ccache
        try? FileManager.default.removeItem(atPath: path)
    }

    struct MoveDecision {
        var mode: RealStepReport.Mode
        var reason: String?
        var real: OutcomeSummary?
        /// For several moves: the differences per move (nil: compare `real` as one outcome).
        var mismatches: [String]? = nil
        /// For several moves: each move's real outcome.
        var parts: [OutcomeSummary] = []
    }

    /// What to run for one move, or why it cannot run for real.
    enum Plan {
        /// `machine`: where the user's credentials are (its krb5.conf when there are several realms).
        case run(arguments: [String], destination: String, destinationFQDN: String, machine: String)
        /// Storage moves: the daemon moves VMs only, so the Kerberos exchange (including
        /// S4U2Proxy to `cifs/<destination>`) runs alone.
        case probe(KerberosDelegationProbe, destination: String, source: String, reason: String)
        case simulatedOnly(String)
    }

    /// Runs a move for real when its rules can run for real; `before` is the world it started in.
    func move(_ spec: MoveSpec, before world: World, sim: ActionOutcome) async -> MoveDecision {
        switch plan(spec, before: world) {
        case .simulatedOnly(let reason): return MoveDecision(mode: .simulatedOnly, reason: reason)
        case let .run(arguments, destination, fqdn, machine):
            var real = await migrate(arguments, destination: destination, fqdn: fqdn, machine: machine)
            if real.result != "error", let missing = vmNotMoved(spec, from: world) { real = OutcomeSummary(result: "error", text: missing) }
            return MoveDecision(mode: .compared, real: real)
        case let .probe(probe, destination, source, reason):
            // The daemon keeps a refused delegation for its ticket's life (HostTicketDelegation); a
            // probe stands for a path the daemon does not have, so the same rule is applied around it:
            // while the host's ticket is the one of the refusal, the refusal stands.
            let key = "\(source.lowercased()) \(probe.protocolTransitionFor ?? probe.userCCache) \(probe.targets.joined(separator: ","))"
            let ticket = hostTickets.end(of: ServiceTarget.shortKey(source))
            if let kept = hostTickets.refusal(key, ticketEnd: ticket) {
                var real = kept
                real.detail = (kept.detail ?? "") + " (the answer this host's current ticket got: a change counts once the host "
                    + "has a new ticket — purge its ccache, restart, or wait for the ticket's end; rule A3)"
                return MoveDecision(mode: .compared, reason: reason, real: real)
            }
            do {
                let result = try await runProbe(probe, source: source)
                let real = Self.outcome(result, destination: destination)
                if real.status == WindowsStatus.noCredentials.hex, let ticket { hostTickets.keep(real, key, ticketEnd: ticket) }
                return MoveDecision(mode: .compared, reason: reason, real: real)
            } catch {
                return MoveDecision(mode: .compared, reason: reason,
                                    real: OutcomeSummary(result: "error", text: "probe failed to run: \(error)"))
            }
        }
    }

    /// After a real success the VM's file must be on the destination and gone from the source.
    func vmNotMoved(_ spec: MoveSpec, from world: World) -> String? {
        guard let source = spec.source ?? world.allHosts.first(where: { $0.virtualMachine(spec.vm) != nil })?.name,
              let s = layout.entry(source), let d = layout.entry(spec.destination) else { return nil }
        let file = "/\(spec.vm).\(VMStore.fileExtension)"
        let fm = FileManager.default
        if fm.fileExists(atPath: d.vmDirectory + file) && !fm.fileExists(atPath: s.vmDirectory + file) { return nil }
        return "migauth migrate reported success but \(spec.vm) is not on \(d.name) (or still on \(s.name))"
    }

    /// Several moves started together (rule N2): all run at once; compared as a multiset of
    /// results, since which of them waits depends on timing.
    func moves(_ specs: [MoveSpec], before world: World, sim: ActionOutcome) async -> MoveDecision {
        var runs: [(arguments: [String], destination: String, fqdn: String, machine: String)] = []
        for spec in specs {
            switch plan(spec, before: world) {
            case .simulatedOnly(let reason): return MoveDecision(mode: .simulatedOnly, reason: reason)
            case let .run(arguments, destination, fqdn, machine): runs.append((arguments, destination, fqdn, machine))
            case .probe(_, _, _, let reason): return MoveDecision(mode: .simulatedOnly, reason: reason)
            }
        }
        // "At the same moment": the destinations' daemons are paused while every move starts and
        // connects, then resumed, so they meet all the connections together (not by transfer timing).
        let destinations = Array(Set(specs.compactMap { layout.entry($0.destination)?.key }))
        let expected = Dictionary(grouping: specs.compactMap { layout.entry($0.destination) }, by: \.key).values
            .map { (address: $0[0].address, port: $0[0].migrationPort, count: $0.count) }
        await daemons.pause(destinations, true)
        let outcomes = await withTaskGroup(of: (Int, OutcomeSummary).self) { group in
            for (i, r) in runs.enumerated() {
                group.addTask { (i, await migrate(r.arguments, destination: r.destination, fqdn: r.fqdn, machine: r.machine)) }
            }
            group.addTask {
                // Resume once every move has connected (the connections wait in the paused daemons'
                // backlogs) — not after a fixed delay, which a loaded machine can outrun — at most 20 s.
                for _ in 0..<400 {
                    if expected.allSatisfy({ LoopbackConnections.established(to: $0.address, port: $0.port) >= $0.count }) { break }
                    try? await Task.sleep(for: .milliseconds(50))
                }
                // Each hello follows its connect: wait until every connection's first bytes wait in
                // the paused daemon's receive queue (not a fixed delay), at most 5 s more.
                for _ in 0..<100 {
                    if expected.allSatisfy({ LoopbackConnections.withUnreadData(at: $0.address, port: $0.port) >= $0.count }) { break }
                    try? await Task.sleep(for: .milliseconds(50))
                }
                await daemons.pause(destinations, false)
                return (-1, OutcomeSummary(result: "resumed"))
            }
            var out = [OutcomeSummary?](repeating: nil, count: runs.count)
            for await (i, o) in group where i >= 0 { out[i] = o }
            return out.compactMap { $0 }
        }
        let simParts = sim.parts.map(OutcomeSummary.init)
        let overall = outcomes.contains { $0.result == "error" } ? "error"
            : outcomes.contains { $0.result == "queued" } ? "queued" : "success"
        let describe = { (o: [OutcomeSummary]) in o.map(\.description).sorted().joined(separator: ", ") }
        var mismatches: [String] = []
        if describe(simParts) != describe(outcomes) {
            mismatches.append("moves: SIM [\(describe(simParts))], REAL [\(describe(outcomes))]")
        }
        return MoveDecision(mode: .compared, reason: "N2: compared as a multiset of results",
                            real: OutcomeSummary(result: overall), mismatches: mismatches, parts: outcomes)
    }

    func plan(_ spec: MoveSpec, before world: World) -> Plan {
        let sourceName = spec.source ?? world.allHosts.first { $0.virtualMachine(spec.vm) != nil }?.name
        guard let sourceName, let source = world.host(sourceName), let dest = world.host(spec.destination),
              let origin = world.host(spec.startedOn ?? sourceName) else { return .simulatedOnly(Reason.notStarted) }
        let userDomain = world.directory.resolve(spec.user, defaultDomain: origin.domain)?.domain
        guard [source.domain, dest.domain, origin.domain, userDomain ?? ""].allSatisfy({ realms.byDomain[$0] != nil }),
              let sourceRealm = realm(ofDomain: source.domain), let destRealm = realm(ofDomain: dest.domain),
              let userRealm = realm(ofDomain: userDomain) else {
            return .simulatedOnly(Reason.multiDomain)
        }
        guard let user = userName(spec.user, near: origin.name, world: world),
              let ref = world.directory.resolve(spec.user, defaultDomain: origin.domain),
              let session = Self.session(of: ref, on: origin, choosing: spec.session) else { return .simulatedOnly(Reason.notStarted) }
        let local = origin.key == source.key && !session.kind.isRemoteShell
        let probeOnly = spec.kind != .live || (source.os.usesWinRMForRemoteManagement && !local)
        if let reason = Self.limitation(spec, source: source, destination: dest, probeOnly: probeOnly) { return .simulatedOnly(reason) }
        guard let s = layout.entry(source.name), let d = layout.entry(dest.name) else { return .simulatedOnly(Reason.notStarted) }
        // The user's credentials: on the machine the move is started from, or — for a Kerberos
        // remote shell — on the machine the shell came from.
        let machine = session.kind.hasReusableCredentials ? origin.name : (session.from ?? "")
        var arguments = ["migrate", "--vm", spec.vm, "--to", d.fqdn,
                         "--endpoint", "\(Self.endpointAddress(spec, destination: dest, entry: d)):\(d.migrationPort)"]
        let via = ["--via", "\(s.address):\(s.managementPort)", "--source-fqdn", s.fqdn, "--realm", sourceRealm.name]
        if source.migration.authenticationType == .credSSP {
            guard spec.kind == .live else { return .simulatedOnly(Reason.credSSPStorage) }
            arguments += via + credSSPSignOn(user, session: session, atSource: origin.key == source.key, source: s,
                                             machine: machine)
            return .run(arguments: arguments, destination: spec.destination, destinationFQDN: d.fqdn, machine: machine)
        }
        // A 2016+ source reached by remote management (WinRM) uses protocol transition (A2b), and
        // the daemon moves VMs only: both run as the Kerberos exchange alone.
        let winRM = source.os.usesWinRMForRemoteManagement && !local
        if spec.kind != .live || winRM {
            var targets = spec.kind.movesVM ? [PrincipalNames.service(.migration, fqdn: d.fqdn)] : []
            if spec.kind.needsCIFS { targets.append(PrincipalNames.service(.cifs, fqdn: d.fqdn)) }
            var probe = KerberosDelegationProbe(
                userCCache: userCCache(machine, user), sourcePrincipal: sourceRealm.qualified("host/\(s.fqdn)"),
                sourceKeytab: s.keytab, sourceClientKeytab: s.clientKeytab, sourceCCache: s.hostCCache,
                targets: targets.map(destRealm.qualified), targetKeytab: d.keytab)
            if winRM { probe.protocolTransitionFor = userRealm.qualified(user) }
            return .probe(probe, destination: spec.destination, source: s.name,
                          reason: winRM ? Reason.protocolTransition : Reason.storage)
        }
        arguments += ["--ccache", userCCache(machine, user)]
        // Hyper-V's migration service acts for the user through constrained delegation whenever the
        // source authenticates with Kerberos, also for a move started at the source's own console
        // (rule A2): so every Kerberos move asks the source's daemon over its management channel,
        // from the machine the move is started on (the source itself for a local sign-on).
        let from = layout.entry(machine)?.address ?? s.address
        arguments += via + ["--local-address", from]
        return .run(arguments: arguments, destination: spec.destination, destinationFQDN: d.fqdn, machine: machine)
    }

    /// How a move on a CredSSP source signs on to the source's management channel (`--via`).
    ///
    /// A console / Remote Desktop sign-on at the source, or a CredSSP remote shell to it, holds the
    /// user's password there (rule A1): as for Kerberos, the move goes through the source's service
    /// (Hyper-V's VMMS, which applies P1, P3, A4, A7), signed on with CredSSP and that password, from
    /// where the shell came (the source itself for a console). Anything else — a Kerberos shell, a
    /// workstation, another host (A6) — is a network logon with the Kerberos ccache of `machine`: the
    /// source then has no credentials to pass on (0x8009030E naming the destination).
    func credSSPSignOn(_ user: String, session: SignOn, atSource: Bool, source s: HostLayout.Entry,
                       machine: String) -> [String] {
        guard atSource && session.kind.hasReusableCredentials else {
            return ["--local-address", layout.entry(machine)?.address ?? s.address, "--ccache", userCCache(machine, user)]
        }
        let from = session.kind.isRemoteShell ? session.from.flatMap { layout.entry($0)?.address } ?? s.address : s.address
        return ["--sign-on", "credssp", "--user", user, "--password-file", layout.passwordFile(host: s.name, user: user) ?? "",
                "--local-address", from]
    }

    /// Why the real hosts cannot reproduce a move whose rules otherwise run for real, or nil.
    static func limitation(_ spec: MoveSpec, source: Hosts.SimulatedHost, destination dest: Hosts.SimulatedHost, probeOnly: Bool) -> String? {
        // P4 runs for real in the daemons (the destination refuses a down-level offer); storage
        // moves and remotely managed 2016+ sources run as the Kerberos exchange alone, which has no offer.
        if dest.os < source.os && spec.kind.movesVM && probeOnly { return Reason.osGeneration }
        if !dest.hypervisorInstalled { return Reason.noHypervisor }
        return nil
    }

    /// Where a move connects (rule N1 with a chosen address, `address:`): the destination's daemon
    /// listens, as Hyper-V's service does, only where migration is accepted — its loopback address
    /// stands for every simulated address in a listed network (all of them with "use any network").
    /// A chosen address outside the listed networks is the host's unlisted loopback address
    /// (``HostLayout/Entry/unlistedAddress``), where nothing listens: the connection is refused.
    static func endpointAddress(_ spec: MoveSpec, destination dest: Hosts.SimulatedHost, entry d: HostLayout.Entry) -> String {
        guard let text = spec.address, let chosen = IPv4Address(text), !dest.migration.useAnyNetwork,
              dest.migration.network(containing: chosen) == nil else { return d.address }
        return d.unlistedAddress
    }

    /// Runs `migauth migrate …` and reads its outcome: exit 0 is success ("waited in queue" is
    /// queued), otherwise stderr holds Hyper-V's text (the destination named by its FQDN, which
    /// is replaced by the name the scenario typed) then a `(SYMBOL: detail)` line.
    func migrate(_ arguments: [String], destination: String, fqdn: String, machine: String) async -> OutcomeSummary {
        let r: CommandResult
        do { r = try await run(on: machine, arguments) } catch {
            return OutcomeSummary(result: "error", text: "could not run migauth migrate: \(error)")
        }
        if r.succeeded {
            return OutcomeSummary(result: r.standardOutput.contains("waited in queue") ? "queued" : "success")
        }
        let lines = r.standardError.split(separator: "\n", omittingEmptySubsequences: false)
        let message = lines.prefix { !$0.hasPrefix("(") }.joined(separator: "\n")
            .trimmingCharacters(in: .newlines).replacingOccurrences(of: fqdn, with: destination)
        let status = message.range(of: "\\(0x[0-9A-Fa-f]{8}\\)", options: [.regularExpression, .backwards])
            .map { String(message[$0].dropFirst().dropLast()).uppercased().replacingOccurrences(of: "0X", with: "0x") }
        let detail = lines.drop { !$0.hasPrefix("(") }.joined(separator: " ").trimmingCharacters(in: .whitespacesAndNewlines)
        return OutcomeSummary(result: "error", status: status, text: message, detail: detail.isEmpty ? nil : detail)
    }

    /// What Hyper-V shows for a probe's result: success, or its two lines naming the destination.
    static func outcome(_ result: KerberosDelegationProbe.Result, destination: String) -> OutcomeSummary {
        guard let code = result.status else { return OutcomeSummary(result: "success", detail: result.detail) }
        let status = WindowsStatus.known(code) ?? WindowsStatus(code: code, symbol: "", text: "Unknown error")
        return OutcomeSummary(result: "error", status: status.hex,
                              text: MigrationMessages.connectionFailure(destination: destination, status: status),
                              detail: result.detail)
    }

    /// Runs `migauth scenario probe JSON` with the realm's environment.
    func runProbe(_ probe: KerberosDelegationProbe, source: String) async throws -> KerberosDelegationProbe.Result {
        let json = String(decoding: try JSONEncoder().encode(probe), as: UTF8.self)
        let r = try await run(on: source, ["scenario", "probe", json])
        guard let line = r.standardOutput.split(separator: "\n").last,
              let result = try? JSONDecoder().decode(KerberosDelegationProbe.Result.self, from: Data(line.utf8)) else {
            throw TestRealmError.commandFailed(r)
        }
        return result
    }

    /// The session a move started on `origin` runs in (as the rules engine picks it, or the one the step names).
    static func session(of user: PrincipalRef, on origin: Hosts.SimulatedHost, choosing kind: SignOnKind? = nil) -> SignOn? {
        // The move names the session (`session:`) when the user has several on that machine.
        if let kind { return origin.signOns(of: user).first { $0.kind == kind } }
        let rank: [SignOnKind: Int] = [.console: 0, .remoteDesktop: 1, .remoteShellCredSSP: 2, .remoteShellKerberos: 3]
        return origin.signOns(of: user).min { rank[$0.kind, default: 9] < rank[$1.kind, default: 9] }
    }
}

/// The replicas of each domain with several DCs (``DomainControllers``).
final class ControllerRegistry: Sendable {
    private let state = Mutex<[String: DomainControllers]>([:])

    func add(_ controllers: DomainControllers, domain: String) { state.withLock { $0[domain] = controllers } }
    func get(_ domain: String) -> DomainControllers? { state.withLock { $0[domain] } }
    var byDomain: [String: DomainControllers] { state.withLock { $0 } }
    var all: [DomainControllers] { state.withLock { Array($0.values) } }
}

/// When each host's real TGT ends, by host key, and the probes' refusals kept with it.
final class HostTicketEnds: Sendable {
    private struct State {
        var ends: [String: ContinuousClock.Instant] = [:]
        var refusals: [String: (ticketEnd: ContinuousClock.Instant, outcome: OutcomeSummary)] = [:]
    }
    private let state = Mutex(State())
    /// How long every host TGT of this lab lasts (``RealScenarioRunner/hostTicketLifetime(for:)``).
    let lifetime: Duration

    init(lifetime: Duration) { self.lifetime = lifetime }

    func set(key: String, end: ContinuousClock.Instant) { state.withLock { $0.ends[key] = end } }
    func end(of key: String) -> ContinuousClock.Instant? { state.withLock { $0.ends[key] } }

    /// A refusal kept with the ticket that ends at `ticketEnd` (not after it ended).
    func refusal(_ key: String, ticketEnd: ContinuousClock.Instant?) -> OutcomeSummary? {
        state.withLock { s in
            guard let kept = s.refusals[key], kept.ticketEnd == ticketEnd, kept.ticketEnd > .now else { return nil }
            return kept.outcome
        }
    }

    func keep(_ outcome: OutcomeSummary, _ key: String, ticketEnd: ContinuousClock.Instant) {
        state.withLock { $0.refusals[key] = (ticketEnd, outcome) }
    }
}
