import Directory
import Hosts

/// Rule A2: with Kerberos, the source's computer account must be trusted to delegate to
/// `Microsoft Virtual System Migration Service/<destination>` (and `cifs/<destination>` when
/// storage moves). "Kerberos only" is enough; then the move can start from any domain machine.
///
/// Rule A2b (also here): on a Windows Server 2016+ source reached by remote management (WinRM),
/// the account also needs protocol transition ("Use any authentication protocol",
/// TRUSTED_TO_AUTH_FOR_DELEGATION); with "Kerberos only" the move fails (Hyper-V event 20306).
///
/// What counts is the setting in the source's own ticket (rule A3, ``A3DelegationTakesEffectLate``).
enum A2ConstrainedDelegation {
    static func neededClasses(_ ctx: MoveContext) -> [ServiceClass] { neededClasses(kind: ctx.move.kind) }

    private static let liveClasses: [ServiceClass] = [.migration]
    private static let storageClasses: [ServiceClass] = [.cifs]
    private static let bothClasses: [ServiceClass] = [.migration, .cifs]

    static func neededClasses(kind: MoveKind) -> [ServiceClass] {
        switch kind {
        case .live: return liveClasses
        case .storage: return storageClasses
        case .both: return bothClasses
        }
    }

    static func check(_ ctx: MoveContext, _ run: inout RuleRun) -> MigrationFailure? {
        let source = ctx.source
        let destKey = ctx.destination.key
        // The ticket the source would present: its cached TGT's snapshot, else a new one's.
        let ticket = source.tickets.validTGT(at: ctx.now)
        let effective = ticket?.delegation ?? ctx.directory.computer(source.name, domain: source.domain, on: source.logonDC)?.delegationSnapshot ?? .none
        let classes = neededClasses(ctx)
        var missing: [ServiceClass] = []
        for c in classes where !effective.allows(ServiceTarget(serviceClass: c, key: destKey)) { missing.append(c) }
        let needsProtocolTransition = source.os.usesWinRMForRemoteManagement && ctx.remotelyManaged
        if !missing.isEmpty {
            if let late = A3DelegationTakesEffectLate.explainMissing(ctx, classes: missing, needsProtocolTransition: needsProtocolTransition) {
                return late
            }
            return notDelegated(ctx, missing: missing, kind: effective.kind, anyProtocol: needsProtocolTransition)
        }
        if needsProtocolTransition && effective.kind == .constrainedKerberosOnly {
            if let late = A3DelegationTakesEffectLate.explainProtocolTransition(ctx) { return late }
            return protocolTransition(ctx)
        }
        A3DelegationTakesEffectLate.warnIfStale(ctx, ticket: ticket, classes: classes,
                                                needsProtocolTransition: needsProtocolTransition, &run)
        return nil
    }

    /// The `msDS-AllowedToDelegateTo` values for `classes` to the destination: FQDN and short name.
    static func serviceValues(_ ctx: MoveContext, classes: [ServiceClass]) -> [String] {
        let d = ctx.destination
        return classes.flatMap { ["\($0.name)/\(d.fqdn)", "\($0.name)/\(d.name)"] }
    }

    /// The commands that set the delegation up (ADUC's Delegation tab in PowerShell and samba-tool),
    /// leaving out what the newest directory state already has.
    static func delegationFixes(_ ctx: MoveContext, classes: [ServiceClass], anyProtocol: Bool) -> [String] {
        let s = ctx.source.name
        let newest = A3DelegationTakesEffectLate.newest(ctx)?.account
        let present = Set((newest?.allowedToDelegateTo ?? []).map { $0.lowercased() })
        let values = serviceValues(ctx, classes: classes).filter { !present.contains($0.lowercased()) }
        let setAnyProtocol = anyProtocol && newest?.delegation != .constrainedAnyProtocol
        var fixes: [String] = []
        if !values.isEmpty {
            fixes.append("Set-ADComputer -Identity \(s) -Add @{'msDS-AllowedToDelegateTo'=" + values.map { "'\($0)'" }.joined(separator: ",") + "}")
        }
        if setAnyProtocol { fixes.append("Set-ADAccountControl -Identity '\(s)$' -TrustedToAuthForDelegation $true") }
        for v in values { fixes.append("or with samba-tool: samba-tool delegation add-service \(s)$ '\(v)'") }
        if setAnyProtocol { fixes.append("or with samba-tool: samba-tool delegation for-any-protocol \(s)$ on") }
        let logon = ctx.directory.controller(ctx.source.logonDC)?.name ?? ctx.source.logonDC
        let purge = "purge the source's tickets: klist -li 0x3e7 purge (on \(s)), after the change has replicated to its logon DC \(logon)"
        fixes.append(fixes.isEmpty ? purge.prefix(1).uppercased() + purge.dropFirst() : "then " + purge)
        return fixes
    }

    private static func notDelegated(_ ctx: MoveContext, missing: [ServiceClass], kind: DelegationKind, anyProtocol: Bool) -> MigrationFailure {
        let s = ctx.source.name, d = ctx.destination.name
        let services = missing.map { "\($0.name)/\(d)" }.joined(separator: " and ")
        let entries = ctx.directory.computer(s, domain: ctx.source.domain, on: ctx.source.logonDC)?.allowedToDelegateTo ?? []
        let setting: String
        switch kind {
        case .none: setting = "is not trusted for delegation"
        case .unconstrained: setting = "is trusted for delegation to any service, but its ticket does not say so yet"
        case .constrainedKerberosOnly, .constrainedAnyProtocol:
            setting = entries.isEmpty ? "is set for constrained delegation but its msDS-AllowedToDelegateTo list is empty"
                : "may delegate only to " + entries.map { "'\($0)'" }.joined(separator: ", ")
        }
        return ctx.noCredentials(.a2,
            explanation: "The source uses Kerberos, so its computer account must be trusted to delegate the user's identity to \(services); \(s)$ \(setting).",
            fixes: delegationFixes(ctx, classes: missing, anyProtocol: anyProtocol))
    }

    private static func protocolTransition(_ ctx: MoveContext) -> MigrationFailure {
        let s = ctx.source.name
        return ctx.noCredentials(.a2b,
            explanation: "\(s) runs \(ctx.source.os) and the move was started by remote management (\(ctx.startedAtSource ? "a remote shell on \(s)" : "from \(ctx.origin.name)")), which reaches the source over WinRM; its delegation is \"Kerberos only\" but this needs \"Use any authentication protocol\" (Hyper-V event 20306).",
            fixes: ["Set-ADAccountControl -Identity '\(s)$' -TrustedToAuthForDelegation $true",
                    "or with samba-tool: samba-tool delegation for-any-protocol \(s)$ on",
                    "then purge the source's tickets: klist -li 0x3e7 purge (on \(s))",
                    "or sign on to \(s) (console or Remote Desktop) and start the move there"])
    }
}
