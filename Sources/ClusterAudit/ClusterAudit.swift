import Directory
import Hosts
import MigrationRules
import WindowsStatus

/// `migauth audit`: every ordered pair of a cluster's Hyper-V hosts, live and storage moves, with
/// Kerberos and with CredSSP — works, or blocked by which rules — and the deduplicated fix list
/// for the whole cluster.
///
/// The question asked for each pair (S, D) is: could `user`, signed on as `signedOn` to S (or to
/// `from`), move a virtual machine from S to D if both hosts used this authentication type? The
/// audit answers it on copies of the world in which every audited host uses the variant's
/// authentication type, the user is signed on, and each host runs an audit VM; everything else
/// (directory, delegation, tickets, replication, networks, groups) is the world's. Verdicts come
/// from ``PreparedWorld/decide(_:collectAll:)`` (the rules of `World.diagnose`, on integer ids).
public struct ClusterAudit: Sendable {
    /// The four questions asked of each pair.
    public enum Variant: Int, Sendable, CaseIterable, CustomStringConvertible {
        case liveKerberos, storageKerberos, liveCredSSP, storageCredSSP

        public var kind: MoveKind { self == .liveKerberos || self == .liveCredSSP ? .live : .storage }
        public var authentication: MigrationAuthenticationType {
            self == .liveKerberos || self == .storageKerberos ? .kerberos : .credSSP
        }
        /// `live, Kerberos`.
        public var description: String { "\(kind.rawValue), \(authentication.rawValue)" }
        /// `live-kerberos`.
        public var key: String { "\(kind.rawValue)-\(authentication.rawValue.lowercased())" }
    }

    public struct Options: Sendable {
        /// `CONTOSO\alice`, `alice@contoso.com` or `alice`.
        public var user: String
        public var signedOn: SignOnKind
        /// Where the moves are started; nil: on each move's source.
        public var from: String?
        /// The hosts to audit; nil: every host with the Hyper-V role.
        public var hosts: [String]?

        /// Treat every audited host as having live migration enabled on any network: the Hyper-V
        /// settings a directory (LDIF, LDAP) does not hold, so only the directory's rules remain.
        public var assumeHostsReady: Bool

        public init(user: String, signedOn: SignOnKind = .console, from: String? = nil, hosts: [String]? = nil,
                    assumeHostsReady: Bool = false) {
            self.user = user
            self.signedOn = signedOn
            self.from = from
            self.hosts = hosts
            self.assumeHostsReady = assumeHostsReady
        }
    }

    /// Delegation entries to add to one computer account (rule A2), and protocol transition (A2b).
    public struct DelegationFix: Sendable, Hashable {
        /// `TestServer01`.
        public var account: String
        public var domain: String
        /// `msDS-AllowedToDelegateTo` values not in the directory yet, in the order first needed.
        public var add: [String]
        /// "Use any authentication protocol" is needed and not set.
        public var protocolTransition: Bool
        /// Ordered pairs (variant, destination) this unblocks.
        public var pairs: Int
    }

    /// The fixes the rules' own diagnosis prints for one rule, deduplicated over the cluster.
    public struct RuleFix: Sendable, Hashable {
        public var rule: RuleID
        /// How many (pair, variant) verdicts this rule blocks.
        public var blocked: Int
        public var fixes: [String]
        /// A few hosts it concerns (as sources or destinations).
        public var hosts: [String]
    }

    public let options: Options
    /// `CONTOSO\alice`.
    public let userDisplay: String
    /// Audited hosts, in the world's order.
    public let hosts: [String]
    /// Per variant, `n * n` verdicts (source-major); the diagonal is unused.
    let firsts: [[UInt8]]
    let rules: [[RuleSet]]
    public let delegationFixes: [DelegationFix]
    public let ruleFixes: [RuleFix]
    /// Verdicts decided (4 per ordered pair).
    public var decisions: Int { Variant.allCases.count * hosts.count * max(hosts.count - 1, 0) }

    static let order = RuleID.allCases

    /// Verdicts (pair and variant) that do not work.
    public var blockedVerdicts: Int {
        Variant.allCases.reduce(0) { total, v in
            let s = summary(v)
            return total + s.byRule.reduce(0) { $0 + $1.1 }
        }
    }

    /// The verdict for one ordered pair (indexes into ``hosts``); nil on the diagonal.
    public func verdict(_ v: Variant, source: Int, destination: Int) -> (first: RuleID?, all: RuleSet)? {
        guard source != destination else { return nil }
        let i = source * hosts.count + destination
        let f = firsts[v.rawValue][i]
        return (f == UInt8.max ? nil : RuleSet.rule(at: Int(f)), rules[v.rawValue][i])
    }

    /// Counts per variant: pairs that work, and per first-blocking rule.
    public func summary(_ v: Variant) -> (works: Int, byRule: [(RuleID, Int)]) {
        var counts = [Int](repeating: 0, count: Self.order.count)
        var works = 0
        let n = hosts.count
        for s in 0..<n {
            for d in 0..<n where d != s {
                let f = firsts[v.rawValue][s * n + d]
                if f == UInt8.max { works += 1 } else { counts[Int(f)] += 1 }
            }
        }
        return (works, Self.order.enumerated().compactMap { counts[$0.offset] > 0 ? ($0.element, counts[$0.offset]) : nil })
    }

    // MARK: Running

    /// Audits `world`. Throws when the user, `from` or a named host does not exist.
    public static func run(_ world: World, options: Options) throws(SimulationError) -> ClusterAudit {
        let (audited, origin) = try auditedHosts(world, options: options)
        let base = try preparedBase(world, audited: audited, origin: origin, options: options)
        guard let someHost = origin ?? audited.first,
              let userRef = base.directory.resolve(options.user, defaultDomain: someHost.domain) else {
            if audited.isEmpty { return ClusterAudit(empty: options, world: world) }
            throw SimulationError(status: .dsNoSuchObject, message: "No account named \(options.user)")
        }
        let nb = base.directory.domains[userRef.domain]?.domain.netBIOSName ?? userRef.domain
        let display = "\(nb)\\\(base.directory.user(userRef)?.samAccountName ?? userRef.name)"
        var tally = Tally(hosts: audited.count)
        for auth in [MigrationAuthenticationType.kerberos, .credSSP] {
            let prepared = PreparedWorld(try base.withAuthentication(auth, on: audited), extraUsers: [userRef])
            guard let u = prepared.userID(userRef) else { throw SimulationError(status: .dsNoSuchObject, message: "No account named \(options.user)") }
            let ids = audited.map { prepared.hostID($0.name) ?? 0 }
            let originID = origin.flatMap { prepared.hostID($0.name) }
            for v in Variant.allCases where v.authentication == auth {
                tally.sweep(prepared, variant: v, ids: ids, origin: originID, user: u, session: options.signedOn)
            }
        }
        let ruleFixes = try ruleFixes(base, tally: tally, audited: audited, origin: origin, options: options)
        return ClusterAudit(options: options, userDisplay: display, hosts: audited.map(\.name), firsts: tally.firsts, rules: tally.rules,
                            delegationFixes: tally.delegationFixes(audited),
                            ruleFixes: Self.order.compactMap { ruleFixes[$0] })
    }

    /// The hosts audited (named, or every Hyper-V host) and the host the moves start from.
    private static func auditedHosts(_ world: World, options: Options) throws(SimulationError) -> ([SimulatedHost], SimulatedHost?) {
        var audited: [SimulatedHost] = []
        if let names = options.hosts {
            for n in names {
                guard let h = world.host(n) else { throw SimulationError(status: .targetUnknown, message: "No host named \(n)") }
                if !audited.contains(where: { $0.key == h.key }) { audited.append(h) }
            }
        } else {
            audited = world.allHosts.filter(\.hypervisorInstalled)
        }
        guard let from = options.from else { return (audited, nil) }
        guard let o = world.host(from) else { throw SimulationError(status: .targetUnknown, message: "No host named \(from)") }
        return (audited, o)
    }

    /// `world` with the user signed on where the moves start and the audit VM on each audited host.
    private static func preparedBase(_ world: World, audited: [SimulatedHost], origin: SimulatedHost?,
                                     options: Options) throws(SimulationError) -> World {
        var base = world
        for h in origin.map({ [$0] }) ?? audited {
            try base.apply(.signOn(user: options.user, host: h.name, kind: options.signedOn))
        }
        for h in audited {
            try base.updateHost(h.name) { (x: inout SimulatedHost) throws(HostError) in
                if x.virtualMachine(auditVM) == nil { try x.addVirtualMachine(VirtualMachine(name: auditVM)) }
                if options.assumeHostsReady {
                    x.migration.enabled = true
                    x.migration.useAnyNetwork = true
                }
            }
        }
        return base
    }

    private static let auditVM = "MigAuth-Audit-VM"

    /// Fixes of rules other than A2/A2b: from each representative move's full diagnosis.
    private static func ruleFixes(_ base: World, tally: Tally, audited: [SimulatedHost], origin: SimulatedHost?,
                                  options: Options) throws(SimulationError) -> [RuleID: RuleFix] {
        var ruleFixes: [RuleID: RuleFix] = [:]
        for auth in [MigrationAuthenticationType.kerberos, .credSSP] {
            let w = try base.withAuthentication(auth, on: audited)
            for (rule, v, s, d) in tally.representatives where v.authentication == auth {
                let move = MoveRequest(vm: auditVM, from: audited[s].name, to: audited[d].name, kind: v.kind, user: options.user,
                                       startedFrom: origin?.name ?? audited[s].name, session: options.signedOn)
                guard let diagnosis = try? w.diagnose(move) else { continue }
                for failure in diagnosis.failures where failure.rule == rule {
                    var entry = ruleFixes[rule] ?? RuleFix(rule: rule, blocked: tally.blockedCount[RuleSet.position(rule)], fixes: [], hosts: [])
                    for fix in failure.fixes where !entry.fixes.contains(fix) { entry.fixes.append(fix) }
                    for h in [audited[s].name, audited[d].name] where entry.hosts.count < 8 && !entry.hosts.contains(h) { entry.hosts.append(h) }
                    ruleFixes[rule] = entry
                }
            }
        }
        return ruleFixes
    }

    /// What the sweep over every (variant, source, destination) collects.
    private struct Tally {
        let n: Int
        var firsts: [[UInt8]] = []
        var rules: [[RuleSet]] = []
        // Delegation needed, by (source, destination), and per source.
        var needMigration: [Bool]
        var needCIFS: [Bool]
        var needPT: [Bool]
        var delegationVerdicts: [Int]
        /// (rule, variant, source, destination): a representative move for the rule's own fixes.
        var representatives: [(RuleID, Variant, Int, Int)] = []
        var seenRepresentative: [Bool]
        var blockedCount: [Int]

        init(hosts n: Int) {
            self.n = n
            needMigration = [Bool](repeating: false, count: n * n)
            needCIFS = [Bool](repeating: false, count: n * n)
            needPT = [Bool](repeating: false, count: n)
            delegationVerdicts = [Int](repeating: 0, count: n)
            seenRepresentative = [Bool](repeating: false, count: RuleID.allCases.count * 2 * n)
            blockedCount = [Int](repeating: 0, count: RuleID.allCases.count)
        }

        mutating func sweep(_ prepared: PreparedWorld, variant v: Variant, ids: [Int], origin: Int?, user u: Int,
                            session: SignOnKind) {
            var f = [UInt8](repeating: UInt8.max, count: n * n)
            var r = [RuleSet](repeating: RuleSet(), count: n * n)
            for s in 0..<n {
                for d in 0..<n where d != s {
                    let m = PreparedWorld.ResolvedMove(source: ids[s], destination: ids[d], origin: origin ?? ids[s],
                                                       user: u, kind: v.kind, session: session)
                    let verdict = prepared.decide(m, collectAll: true)
                    guard let first = verdict.first else { continue }
                    let i = s * n + d
                    f[i] = UInt8(RuleSet.position(first))
                    r[i] = verdict.all
                    for rule in verdict.all { record(rule, verdict: verdict.all, move: m, prepared, variant: v, s, d) }
                }
            }
            firsts.append(f)
            rules.append(r)
        }

        private mutating func record(_ rule: RuleID, verdict all: RuleSet, move m: PreparedWorld.ResolvedMove,
                                     _ prepared: PreparedWorld, variant v: Variant, _ s: Int, _ d: Int) {
            let p = RuleSet.position(rule)
            blockedCount[p] += 1
            if rule == .a2 || rule == .a2b {
                // No delegation where it would not help: A4 (the user), A5 (another
                // domain) and P4 (down-level) block the move whatever the delegation.
                if all.contains(.a4) || all.contains(.a5) || all.contains(.p4) { return }
                let missing = prepared.missingDelegation(m)
                if missing.migration { needMigration[s * n + d] = true }
                if missing.cifs { needCIFS[s * n + d] = true }
                if missing.protocolTransition { needPT[s] = true }
                delegationVerdicts[s] += 1
                return
            }
            // One representative per (rule, source) and (rule, destination).
            let base = (p * 2 + (v.authentication == .kerberos ? 0 : 1)) * n
            if !seenRepresentative[base + s] || !seenRepresentative[base + d] {
                seenRepresentative[base + s] = true
                seenRepresentative[base + d] = true
                representatives.append((rule, v, s, d))
            }
        }

        func delegationFixes(_ audited: [SimulatedHost]) -> [DelegationFix] {
            var fixes: [DelegationFix] = []
            for s in 0..<n where delegationVerdicts[s] > 0 {
                var add: [String] = []
                for d in 0..<n where d != s {
                    let dest = audited[d]
                    if needMigration[s * n + d] {
                        add += ["\(ServiceClass.migrationServiceName)/\(dest.fqdn)", "\(ServiceClass.migrationServiceName)/\(dest.name)"]
                    }
                    if needCIFS[s * n + d] { add += ["cifs/\(dest.fqdn)", "cifs/\(dest.name)"] }
                }
                guard !add.isEmpty || needPT[s] else { continue }
                fixes.append(DelegationFix(account: audited[s].name, domain: audited[s].domain, add: add,
                                           protocolTransition: needPT[s], pairs: delegationVerdicts[s]))
            }
            return fixes
        }
    }

    init(options: Options, userDisplay: String, hosts: [String], firsts: [[UInt8]], rules: [[RuleSet]],
         delegationFixes: [DelegationFix], ruleFixes: [RuleFix]) {
        self.options = options
        self.userDisplay = userDisplay
        self.hosts = hosts
        self.firsts = firsts
        self.rules = rules
        self.delegationFixes = delegationFixes
        self.ruleFixes = ruleFixes
    }

    init(empty options: Options, world: World) {
        self.init(options: options, userDisplay: options.user, hosts: [], firsts: Variant.allCases.map { _ in [] },
                  rules: Variant.allCases.map { _ in [] }, delegationFixes: [], ruleFixes: [])
    }

    /// The commands for the delegation fixes (PowerShell and samba-tool), then the ticket purge.
    public var delegationCommands: [String] {
        var out: [String] = []
        for fix in delegationFixes {
            if !fix.add.isEmpty {
                out.append("Set-ADComputer -Identity \(fix.account) -Add @{'msDS-AllowedToDelegateTo'=" + fix.add.map { "'\($0)'" }.joined(separator: ",") + "}")
            }
            if fix.protocolTransition { out.append("Set-ADAccountControl -Identity '\(fix.account)$' -TrustedToAuthForDelegation $true") }
        }
        for fix in delegationFixes {
            for value in fix.add where value.contains(".") { out.append("samba-tool delegation add-service \(fix.account)$ '\(value)'") }
            if fix.protocolTransition { out.append("samba-tool delegation for-any-protocol \(fix.account)$ on") }
        }
        if !delegationFixes.isEmpty {
            let names = delegationFixes.map(\.account)
            out.append("After replication to each host's logon DC, purge the hosts' tickets: klist -li 0x3e7 purge (on \(names.prefix(6).joined(separator: ", "))\(names.count > 6 ? " and \(names.count - 6) more" : ""))")
        }
        return out
    }
}

extension World {
    /// This world with every host of `hosts` set to authentication type `auth`.
    fileprivate func withAuthentication(_ auth: MigrationAuthenticationType, on hosts: [SimulatedHost]) throws(SimulationError) -> World {
        var w = self
        for h in hosts {
            try w.updateHost(h.name) { (x: inout SimulatedHost) throws(HostError) in x.migration.authenticationType = auth }
        }
        return w
    }
}
