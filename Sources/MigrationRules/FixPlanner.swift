import Directory
import Hosts
import WindowsStatus

/// Computes, for the first rule a move breaks, the changes that clear it — from the world's
/// state: only what is missing, on the host or account that needs it, with the commands for
/// Windows and for Samba. ``World/fixPlan(for:)`` chains them.
enum FixPlanner {
    /// Failures no configuration change clears: no Hyper-V role, no such VM, the same host twice (P3),
    /// a down-level destination (P4), domains that do not trust each other (P5).
    static func isUnfixable(_ f: MigrationFailure) -> Bool {
        switch f.rule {
        case .p4, .p5: return true
        case .p3: return f.status != .notSupported
        default: return false
        }
    }

    static func steps(for f: MigrationFailure, _ ctx: MoveContext, world: World) -> [FixStep] {
        switch f.rule {
        case .p3:
            let host = f.stage == .source ? ctx.source : ctx.destination
            return [FixStep(rule: .p3, command: "Enable-VMMigration -ComputerName \(host.name)", change: .world(.enableMigration(host: host.name)), stage: f.stage)]
        case .p1:
            let host = f.stage == .source ? ctx.source : ctx.destination
            let who = ctx.userDisplay
            return [FixStep(rule: .p1, command: "Invoke-Command -ComputerName \(host.name) { Add-LocalGroupMember -Group 'Hyper-V Administrators' -Member '\(who)' }",
                            change: .world(.addLocalGroupMember(host: host.name, group: .hyperVAdministrators, member: who)), stage: f.stage)]
        case .n1: return networkSteps(ctx)
        case .a1, .a7: return credSSPSteps(ctx)
        case .a4: return protectionSteps(ctx, world: world)
        case .a5:
            let s = ctx.source.name
            return [FixStep(rule: .a5, command: "Set-VMHost -ComputerName \(s) -VirtualMachineMigrationAuthenticationType CredSSP",
                            change: .world(.setAuthenticationType(host: s, type: .credSSP)))]
        case .a2, .a2b: return delegationSteps(f.rule, ctx)
        case .a3: return lateSteps(ctx)
        default: return []
        }
    }

    /// Why ``steps(for:_:world:)`` found nothing for `f`.
    static func whyNoSteps(_ f: MigrationFailure, _ ctx: MoveContext) -> String {
        if (f.rule == .a2 || f.rule == .a2b) && domainAdmin(ctx) == nil {
            return "changing \(ctx.source.name)$'s delegation needs a member of Domain Admins of \(ctx.source.domain) (rule P2), and the directory has none"
        }
        return "no configuration change clears rule \(f.rule.rawValue) here"
    }

    // MARK: N1, A1/A7

    private static func networkSteps(_ ctx: MoveContext) -> [FixStep] {
        let d = ctx.destination.name
        guard let a = ctx.move.destinationAddress.flatMap(IPv4Address.init) ?? ctx.destination.addresses.first,
              let subnet = IPv4Subnet("\(a)/24") else {
            return [FixStep(rule: .n1, command: "Set-VMHost -ComputerName \(d) -UseAnyNetworkForMigration $true (rule S1: any network)",
                            change: .world(.setUseAnyNetwork(host: d, enabled: true)))]
        }
        return [FixStep(rule: .n1, command: "Add-VMMigrationNetwork \(subnet) -Priority 1 -ComputerName \(d)",
                        change: .world(.addMigrationNetwork(host: d, subnet: subnet.description, priority: 1)))]
    }

    /// CredSSP needs the move started from a sign-on on the source; with Credential Guard there,
    /// Kerberos instead (same domain), or Credential Guard off (another domain: A5 rules Kerberos out).
    private static func credSSPSteps(_ ctx: MoveContext) -> [FixStep] {
        let s = ctx.source.name
        if ctx.source.credentialGuard {
            if ctx.source.domain == ctx.destination.domain && A4NonDelegableUsers.check(ctx) == nil {
                return [FixStep(rule: .a7, command: "Set-VMHost -ComputerName \(s) -VirtualMachineMigrationAuthenticationType Kerberos",
                                change: .world(.setAuthenticationType(host: s, type: .kerberos)))]
            }
        }
        let who = ctx.userDisplay
        var steps: [FixStep] = []
        if ctx.source.credentialGuard {
            steps.append(FixStep(rule: .a7, command: "Turn off Credential Guard on \(s) (Group Policy \"Turn On Virtualization Based Security\": Credential Guard disabled), then restart it — weakens its protection",
                                 change: .world(.setCredentialGuard(host: s, enabled: false))))
        }
        if ctx.startedAtSource && ctx.session.kind.hasReusableCredentials { return steps }
        let existing = ctx.source.signOns.first { $0.user == ctx.user && $0.kind.hasReusableCredentials }
        if existing == nil {
            steps.append(FixStep(rule: .a1, command: "Sign on to \(s) as \(who) (console or Remote Desktop: mstsc /v:\(s))",
                                 change: .world(.signOn(user: who, host: s, kind: .console))))
        }
        let kind = existing?.kind ?? .console
        steps.append(FixStep(rule: .a1, command: "Start the move in that session on \(s): Move-VM -Name '\(ctx.move.vm)' -DestinationHost \(ctx.destination.name)",
                             change: .startMove(on: s, session: kind)))
        return steps
    }

    // MARK: A4

    /// Unmarks "sensitive", and cuts the user out of Protected Users: the user's own membership in
    /// the group that holds it, unless that would cost the user its P1 permission on a host (then
    /// the nested group's membership in Protected Users).
    private static func protectionSteps(_ ctx: MoveContext, world: World) -> [FixStep] {
        var steps: [FixStep] = []
        var copy = world
        let dc = ctx.directory.controller(ctx.source.logonDC)?.name ?? ctx.source.logonDC
        let dir = ctx.directory
        let user = ctx.user
        let sam = dir.user(user)?.samAccountName ?? user.name
        if dir.user(user, on: ctx.source.logonDC)?.sensitive == true {
            steps.append(FixStep(rule: .a4, command: "Set-ADAccountControl -Identity '\(sam)' -AccountNotDelegated $false -Server \(dc) (weakens the account's protection)",
                                 sambaTool: "samba-tool user sensitive \(sam) off", change: .world(.setSensitive(user: dir.display(user), sensitive: false, dc: dc))))
        }
        let pu = A4NonDelegableUsers.protectedUsers(ctx)
        for _ in 0..<8 {
            guard let path = copy.directory.membershipPath(of: user, in: pu, on: ctx.source.logonDC) else { break }
            var step = removal(group: path[path.count - 1], member: user, dc: dc, directory: copy.directory)
            if path.count > 1 {
                var trial = copy
                if (try? FixPlan.apply([step], to: &trial, move: ctx.move)) == nil
                    || !trial.mayMigrate(user, on: ctx.source) || !trial.mayMigrate(user, on: ctx.destination) {
                    step = removal(group: path[0], member: path[1], dc: dc, directory: copy.directory)
                }
            }
            guard (try? FixPlan.apply([step], to: &copy, move: ctx.move)) != nil else { break }
            steps.append(step)
        }
        return steps
    }

    private static func removal(group: PrincipalRef, member: PrincipalRef, dc: String, directory: Directory) -> FixStep {
        let g = directory.group(group)?.samAccountName ?? group.name
        let m = directory.user(member)?.samAccountName ?? directory.group(member)?.samAccountName ?? member.name
        return FixStep(rule: .a4, command: "Remove-ADGroupMember -Identity '\(g)' -Members '\(m)' -Server \(dc) -Confirm:$false (weakens the account's protection)",
                       sambaTool: "samba-tool group removemembers '\(g)' '\(m)'",
                       change: .world(.removeGroupMember(group: directory.display(group), member: directory.display(member), dc: dc)))
    }

    // MARK: A2, A2b, A3

    /// A member of Domain Admins of the source's domain (rule P2), preferring `Administrator`.
    private static func domainAdmin(_ ctx: MoveContext) -> String? {
        let dir = ctx.directory
        guard let admins = dir.group(PrincipalRef(domain: ctx.source.domain, name: Group.domainAdmins), on: ctx.source.logonDC) else { return nil }
        let users = admins.members.filter { dir.user($0) != nil }.sorted()
        let pick = users.first { $0.name.lowercased() == "administrator" } ?? users.first
        return pick.map { dir.display($0) }
    }

    /// The entries the newest account lacks, protocol transition when needed and not set, then new tickets.
    private static func delegationSteps(_ rule: RuleID, _ ctx: MoveContext) -> [FixStep] {
        guard let admin = domainAdmin(ctx) else { return [] }
        let s = ctx.source.name
        let dc = ctx.directory.controller(ctx.source.logonDC)?.name ?? ctx.source.logonDC
        let newest = A3DelegationTakesEffectLate.newest(ctx)?.account
            ?? ctx.directory.computer(s, domain: ctx.source.domain, on: ctx.source.logonDC)
        let present = Set((newest?.allowedToDelegateTo ?? []).map { $0.lowercased() })
        let values = A2ConstrainedDelegation.serviceValues(ctx, classes: A2ConstrainedDelegation.neededClasses(ctx))
            .filter { !present.contains($0.lowercased()) }
        var steps: [FixStep] = []
        if !values.isEmpty {
            steps.append(FixStep(rule: rule,
                command: "Set-ADComputer -Identity \(s) -Add @{'msDS-AllowedToDelegateTo'=" + values.map { "'\($0)'" }.joined(separator: ",") + "} -Server \(dc)",
                sambaTool: values.map { "samba-tool delegation add-service '\(s)$' '\($0)'" }.joined(separator: "; "),
                change: .world(.addDelegation(computer: s, services: values, by: admin, dc: dc))))
        }
        let needsPT = ctx.source.os.usesWinRMForRemoteManagement && ctx.remotelyManaged
        if needsPT && newest?.delegation != .constrainedAnyProtocol {
            steps.append(FixStep(rule: .a2b, command: "Set-ADAccountControl -Identity '\(s)$' -TrustedToAuthForDelegation $true -Server \(dc)",
                                 sambaTool: "samba-tool delegation for-any-protocol '\(s)$' on",
                                 change: .world(.setDelegationKind(computer: s, kind: .constrainedAnyProtocol, by: admin, dc: dc))))
        }
        if ctx.source.tickets.validTGT(at: ctx.now) != nil { steps.append(purge(rule, ctx)) }
        return steps
    }

    private static func lateSteps(_ ctx: MoveContext) -> [FixStep] {
        guard let (account, newestDC) = A3DelegationTakesEffectLate.newest(ctx) else { return [] }
        let dir = ctx.directory
        var steps: [FixStep] = []
        let logon = dir.controller(ctx.source.logonDC)?.name ?? ctx.source.logonDC
        if dir.computer(ctx.source.name, domain: ctx.source.domain, on: ctx.source.logonDC)?.delegationSnapshot != account.delegationSnapshot {
            let nc = dir.domains[ctx.source.domain]?.domain.distinguishedName ?? ""
            steps.append(FixStep(rule: .a3, command: "repadmin /replicate \(logon) \(newestDC) \(nc)",
                                 sambaTool: "samba-tool drs replicate \(logon) \(newestDC) \(nc)",
                                 change: .world(.replicate(from: newestDC, to: logon))))
        }
        if ctx.source.tickets.validTGT(at: ctx.now) != nil { steps.append(purge(.a3, ctx)) }
        return steps
    }

    private static func purge(_ rule: RuleID, _ ctx: MoveContext) -> FixStep {
        let s = ctx.source.name
        return FixStep(rule: rule, command: "Invoke-Command -ComputerName \(s) { klist -li 0x3e7 purge } (the source's tickets carry the old delegation)",
                       change: .world(.purgeTickets(host: s)))
    }
}
