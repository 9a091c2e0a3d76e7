import Directory
import Foundation
import Hosts
import MigrationRules
import RealmProvisioning
import Scenario
import TestRealm
import WindowsStatus

/// Replays a scenario against a real MIT KDC (LDAP back end) provisioned from the scenario's world,
/// and compares each move's real outcome with the simulated one. See docs/real-scenarios.md.
///
/// Per step: the simulation applies it first (`Environment.apply`); then the real side follows —
/// sign-ons become `kinit`s into the host's ccache, purges and restarts drop ccaches, every accepted
/// step re-provisions the realm (a diff) and rewrites the hosts' configurations, and a move runs the
/// real Kerberos exchange (``KerberosDelegationProbe``) in a child process of `executable`
/// (`migauth scenario probe`) with the realm's environment.
public struct RealScenarioRunner: Sendable {
    /// The `migauth` executable (the running one: `/proc/self/exe`).
    public var executable: String

    public init(executable: String) { self.executable = executable }

    /// Runs one scenario; never throws (set-up failures are in ``RealScenarioReport/error``).
    public func run(_ scenario: Scenario) async -> RealScenarioReport {
        var report = RealScenarioReport(name: scenario.name, file: scenario.file, steps: [])
        let realm: TestRealm
        do { realm = try await RealmProvisioner.startRealm(for: scenario.world) } catch {
            report.error = "the realm did not start: \(error)"
            return report
        }
        do {
            let lab = try await RealLab.start(realm: realm, world: scenario.world, executable: executable)
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
                case .moves:
                    r.mode = .simulatedOnly
                    r.reason = RealLab.Reason.daemon
                default:
                    if sim.result != .error { try await lab.follow(step.action, world: env.world) }
                }
                try await lab.sync(env.world)
                report.steps.append(r)
            }
        } catch {
            report.error = "real side failed: \(error)"
        }
        await realm.shutdown()
        return report
    }
}

/// The real side of one scenario: realm, provisioner, host layout, users' ccaches.
struct RealLab {
    let realm: TestRealm
    let provisioner: RealmProvisioner
    let layout: HostLayout
    let executable: String
    let domain: String

    /// Why a step is decided by the simulation alone.
    enum Reason {
        static let multiDomain = "multi-domain (A5, P5): the real run has one MIT realm and no cross-realm trust"
        static let credSSP = "CredSSP (A1, A6, A7): the real CredSSP path is built separately"
        static let protocolTransition = "protocol transition on 2016+ (A2b): WinRM-reached sources are not modelled by the real run"
        static let osGeneration = "OS generations (P4): every real host runs the same software"
        static let daemon = "needs the migration daemon (P1, P3, N1, N2): `migauth serve` (branch service) is not merged yet"
        static let notStarted = "refused before any host acts (no sign-on where it is started, unknown VM)"
    }

    static func start(realm: TestRealm, world: World, executable: String) async throws -> RealLab {
        let provisioner = RealmProvisioner(realm: realm)
        try await provisioner.provision(world)
        let layout = HostLayout(world: world, root: realm.directory + "/hosts")
        try await layout.prepare(realm: realm)
        try layout.write(world: world)
        return RealLab(realm: realm, provisioner: provisioner, layout: layout, executable: executable,
                       domain: world.directory.domainOrder.first ?? "")
    }

    /// Re-provisions the realm and rewrites configurations and VM files (both are diffs).
    func sync(_ world: World) async throws {
        try await provisioner.provision(world)
        try layout.write(world: world)
    }

    /// Reproduces an accepted set-up step on the real hosts.
    func follow(_ action: ScenarioAction, world: World) async throws {
        switch action {
        case let .signOn(user, host, method, from):
            guard let name = userName(user, near: host, world: world),
                  let password = await provisioner.password(of: name) else { return }
            // Console, Remote Desktop and CredSSP shells leave the user's credentials on the host;
            // a Kerberos remote shell leaves them on the machine it comes from.
            let machine = method.hasReusableCredentials ? host : (from ?? "")
            let cc = userCCache(machine, name)
            try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: String(cc.dropFirst(5))).deletingLastPathComponent().path,
                                                    withIntermediateDirectories: true)
            _ = try await realm.kinit(name, password: password, ccache: userCCache(machine, name))
        case let .signOff(user, host):
            if let name = userName(user, near: host, world: world) { remove(userCCache(host, name)) }
        case let .purgeTickets(host):
            if let e = layout.entry(host) { remove(e.hostCCache) }
        case let .restart(host):
            if let e = layout.entry(host) {
                remove(e.hostCCache)
                try? FileManager.default.removeItem(atPath: e.ccacheDirectory)
                try FileManager.default.createDirectory(atPath: e.ccacheDirectory, withIntermediateDirectories: true)
            }
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
        guard let ref = world.directory.resolve(user, defaultDomain: d), ref.domain == domain,
              let account = world.directory.user(ref) else { return nil }
        return PrincipalNames.user(account)
    }

    func remove(_ ccache: String) {
        let path = ccache.hasPrefix("FILE:") ? String(ccache.dropFirst(5)) : ccache
        try? FileManager.default.removeItem(atPath: path)
    }

    struct MoveDecision {
        var mode: RealStepReport.Mode
        var reason: String?
        var real: OutcomeSummary?
    }

    /// Runs a move for real when its deciding rules can run for real; `before` is the world the
    /// move started in, `sim` the simulated outcome.
    func move(_ spec: MoveSpec, before world: World, sim: ActionOutcome) async -> MoveDecision {
        func only(_ reason: String) -> MoveDecision { MoveDecision(mode: .simulatedOnly, reason: reason) }
        let sourceName = spec.source ?? world.allHosts.first { $0.virtualMachine(spec.vm) != nil }?.name
        guard let sourceName, let source = world.host(sourceName), let dest = world.host(spec.destination),
              let origin = world.host(spec.startedOn ?? sourceName) else { return only(Reason.notStarted) }
        let userDomain = world.directory.resolve(spec.user, defaultDomain: origin.domain)?.domain
        guard source.domain == domain, dest.domain == domain, origin.domain == domain, userDomain == domain else {
            return only(Reason.multiDomain)
        }
        guard let user = userName(spec.user, near: origin.name, world: world),
              let ref = world.directory.resolve(spec.user, defaultDomain: origin.domain),
              let session = Self.session(of: ref, on: origin) else { return only(Reason.notStarted) }
        if source.migration.authenticationType == .credSSP { return only(Reason.credSSP) }
        let remotelyManaged = origin.key != source.key || session.kind.isRemoteShell
        if source.os.usesWinRMForRemoteManagement && remotelyManaged { return only(Reason.protocolTransition) }
        if dest.os < source.os { return only(Reason.osGeneration) }
        var scope: String? = nil
        if sim.result == .error {
            // Rules decided before authentication (P3, P1 at the source, N1) or after it (P1 at the
            // destination) need the daemon; the authentication rules run here.
            guard let rule = sim.rule, ["A2", "A3", "A4"].contains(rule) else { return only(Reason.daemon) }
        } else {
            scope = "authentication real; P1, P3, N1 by the daemon once merged"
        }

        guard let s = layout.entry(source.name), let d = layout.entry(dest.name) else { return only(Reason.notStarted) }
        let machine = session.kind.hasReusableCredentials ? origin.name : (session.from ?? "")
        var targets = [PrincipalNames.service(.migration, fqdn: d.fqdn)]
        if spec.kind.needsCIFS { targets = spec.kind.movesVM ? targets + [PrincipalNames.service(.cifs, fqdn: d.fqdn)]
                                                              : [PrincipalNames.service(.cifs, fqdn: d.fqdn)] }
        let probe = KerberosDelegationProbe(
            userCCache: userCCache(machine, user), sourcePrincipal: realm.qualified("host/\(s.fqdn)"),
            sourceKeytab: s.keytab, sourceClientKeytab: s.clientKeytab, sourceCCache: s.hostCCache,
            targets: targets.map(realm.qualified), targetKeytab: d.keytab)
        let result: KerberosDelegationProbe.Result
        do { result = try await runProbe(probe) } catch {
            return MoveDecision(mode: .compared, reason: "probe failed to run: \(error)",
                                real: OutcomeSummary(result: "error", status: nil, text: "\(error)"))
        }
        return MoveDecision(mode: .compared, reason: scope, real: Self.outcome(result, destination: spec.destination))
    }

    /// The session a move started on `origin` runs in (as the rules engine picks it).
    static func session(of user: PrincipalRef, on origin: Hosts.Host) -> SignOn? {
        let rank: [SignOnKind: Int] = [.console: 0, .remoteDesktop: 1, .remoteShellCredSSP: 2, .remoteShellKerberos: 3]
        return origin.signOns(of: user).min { rank[$0.kind, default: 9] < rank[$1.kind, default: 9] }
    }

    /// What Hyper-V shows for the real result: success, or its two lines naming the destination.
    static func outcome(_ result: KerberosDelegationProbe.Result, destination: String) -> OutcomeSummary {
        guard let code = result.status else { return OutcomeSummary(result: "success") }
        let status = WindowsStatus.known(code) ?? WindowsStatus(code: code, symbol: "", text: "Unknown error")
        return OutcomeSummary(result: "error", status: status.hex,
                              text: "Virtual machine migration operation failed at migration Source.\nFailed to establish a connection with host \(destination): \(status.windowsMessage)")
    }

    /// Runs `migauth scenario probe JSON` with the realm's environment.
    func runProbe(_ probe: KerberosDelegationProbe) async throws -> KerberosDelegationProbe.Result {
        let json = String(decoding: try JSONEncoder().encode(probe), as: UTF8.self)
        let r = try await realm.run(executable, ["scenario", "probe", json], check: false)
        guard let line = r.standardOutput.split(separator: "\n").last,
              let result = try? JSONDecoder().decode(KerberosDelegationProbe.Result.self, from: Data(line.utf8)) else {
            throw TestRealmError.commandFailed(r)
        }
        return result
    }
}
