import Directory
import Hosts

/// Rule A3: a delegation change counts for a source host only after it has replicated to the
/// host's logon DC and the host has obtained a new ticket (purged, restarted, or the old one
/// expired after 10 hours). Until then the old setting holds — in both directions.
///
/// ``A2ConstrainedDelegation`` decides with the setting in the source's ticket; this rule
/// explains the difference from the newest setting in the directory: an added entry not yet in
/// effect is reported as an A3 failure, a removed entry still in effect as an A3 warning.
enum A3DelegationTakesEffectLate {
    /// The newest version of the source's account anywhere in its domain, and the DC holding it.
    static func newest(_ ctx: MoveContext) -> (account: ComputerAccount, dc: String)? {
        guard let state = ctx.directory.domains[ctx.source.domain] else { return nil }
        let key = ctx.source.key
        var best: (ObjectStamp, ComputerAccount, String)? = nil
        for c in state.controllerOrder {
            guard let dc = state.controllers[c], let acct = dc.replica.computers[key] else { continue }
            let stamp = dc.replica.computerStamps[key] ?? ObjectStamp(version: 0, time: .zero, originDC: "")
            if let b = best, b.0 >= stamp { continue }
            best = (stamp, acct, dc.name)
        }
        return best.map { ($0.1, $0.2) }
    }

    /// What is missing before the newest setting takes effect: replication to the logon DC, a new ticket.
    private static func pending(_ ctx: MoveContext, newestDC: String, newestAccount: ComputerAccount) -> (replicate: Bool, newTicket: Bool) {
        let dir = ctx.directory
        let logon = dir.computer(ctx.source.name, domain: ctx.source.domain, on: ctx.source.logonDC)
        let replicate = logon?.delegationSnapshot != newestAccount.delegationSnapshot
        let ticket = ctx.source.tickets.validTGT(at: ctx.now)
        let newTicket = ticket != nil && ticket?.delegation != newestAccount.delegationSnapshot
        return (replicate, newTicket)
    }

    private static func steps(_ ctx: MoveContext, newestDC: String, replicate: Bool, newTicket: Bool) -> (String, [String]) {
        let dir = ctx.directory
        let logonName = dir.controller(ctx.source.logonDC)?.name ?? ctx.source.logonDC
        let s = ctx.source.name
        var why: [String] = []
        var fixes: [String] = []
        if replicate {
            why.append("the change made on \(newestDC) has not replicated to \(s)'s logon DC \(logonName)")
            let nc = dir.domains[ctx.source.domain]?.domain.distinguishedName ?? ""
            fixes.append("repadmin /replicate \(logonName) \(newestDC) \(nc) (or wait for replication)")
        }
        if newTicket || replicate {
            if let t = ctx.source.tickets.validTGT(at: ctx.now) {
                why.append("\(s) still holds a ticket issued by \(dir.controller(t.issuedBy)?.name ?? t.issuedBy) at \(t.issuedAt), valid until \(t.expiresAt), carrying the old setting")
            }
            fixes.append((fixes.isEmpty ? "Purge" : "then purge") + " the source's tickets: klist -li 0x3e7 purge (on \(s)), or restart \(s), or wait until its ticket expires")
        }
        return (why.joined(separator: ", and "), fixes)
    }

    /// An A3 failure when the newest directory state would allow `classes` but the ticket does not.
    static func explainMissing(_ ctx: MoveContext, classes: [ServiceClass], needsProtocolTransition: Bool) -> MigrationFailure? {
        guard let (account, dc) = newest(ctx) else { return nil }
        let snap = account.delegationSnapshot
        let destKey = ctx.destination.key
        guard classes.allSatisfy({ snap.allows(ServiceTarget(serviceClass: $0, key: destKey)) }) else { return nil }
        if needsProtocolTransition && snap.kind == .constrainedKerberosOnly { return nil }
        let p = pending(ctx, newestDC: dc, newestAccount: account)
        let (why, fixes) = steps(ctx, newestDC: dc, replicate: p.replicate, newTicket: p.newTicket || !p.replicate)
        return ctx.noCredentials(.a3,
            explanation: "The delegation to \(ctx.destination.name) exists in the directory but is not in effect for \(ctx.source.name) yet: \(why). Delegation changes count only after replication to the host's logon DC and a new ticket.",
            fixes: fixes, related: [.a2])
    }

    /// An A3 failure when protocol transition was turned on but is not in effect yet.
    static func explainProtocolTransition(_ ctx: MoveContext) -> MigrationFailure? {
        guard let (account, dc) = newest(ctx), account.delegation == .constrainedAnyProtocol else { return nil }
        let p = pending(ctx, newestDC: dc, newestAccount: account)
        let (why, fixes) = steps(ctx, newestDC: dc, replicate: p.replicate, newTicket: p.newTicket || !p.replicate)
        return ctx.noCredentials(.a3,
            explanation: "\"Use any authentication protocol\" is set for \(ctx.source.name)$ in the directory but not in effect yet: \(why).",
            fixes: fixes, related: [.a2b])
    }

    /// A warning when the move works only because of a setting the directory no longer has.
    static func warnIfStale(_ ctx: MoveContext, ticket: KerberosTicket?, classes: [ServiceClass],
                            needsProtocolTransition: Bool, _ run: inout RuleRun) {
        // Fast path: nothing pending in the domain and the account unchanged since the ticket.
        if !ctx.directory.hasPendingReplication(in: ctx.source.domain) {
            // No ticket: the decision already used the (fully replicated) directory.
            guard let ticket else { return }
            // The account has not changed since the ticket was issued.
            if let issued = ticket.accountStamp, ctx.sourceReplica?.computerStamps[ctx.source.key] == issued { return }
        }
        guard let (account, dc) = newest(ctx) else { return }
        let snap = account.delegationSnapshot
        let destKey = ctx.destination.key
        let newestAllows = classes.allSatisfy { snap.allows(ServiceTarget(serviceClass: $0, key: destKey)) }
            && !(needsProtocolTransition && snap.kind == .constrainedKerberosOnly)
        guard !newestAllows else { return }
        let p = pending(ctx, newestDC: dc, newestAccount: account)
        let (why, fixes) = steps(ctx, newestDC: dc, replicate: p.replicate, newTicket: p.newTicket || !p.replicate)
        run.warnings.append(RuleWarning(rule: .a3, host: ctx.source.name,
            message: "The directory no longer allows \(ctx.source.name)$ to delegate to \(ctx.destination.name), but the old setting still holds: \(why).",
            fixes: fixes))
    }
}
