import Hosts

/// Rule A7: with Credential Guard on the source (default from Windows Server 2025), CredSSP cannot
/// pass the user's credentials on, so CredSSP moves fail even from a sign-on at the source;
/// Kerberos with constrained delegation still works.
enum A7CredentialGuard {
    static func check(_ ctx: MoveContext) -> MigrationFailure? {
        guard ctx.source.credentialGuard else { return nil }
        let src = ctx.source.name
        return ctx.noCredentials(.a7,
            explanation: "Credential Guard is on for \(src)" + (ctx.source.os.credentialGuardByDefault ? " (the default on \(ctx.source.os))" : "") +
                ", so the user's credentials are isolated and CredSSP cannot delegate them to \(ctx.destination.name).",
            fixes: fixes(ctx))
    }

    /// Kerberos with constrained delegation, unless A5 (another domain) would block it too.
    private static func fixes(_ ctx: MoveContext) -> [String] {
        let src = ctx.source.name
        guard ctx.source.domain == ctx.destination.domain else {
            return ["Impossible while Credential Guard is on: Kerberos cannot reach \(ctx.destination.name) in \(ctx.destination.domain) either (rule A5). Move between hosts of one domain, or turn Credential Guard off on \(src) (weakens its protection)."]
        }
        return ["Set-VMHost -ComputerName \(src) -VirtualMachineMigrationAuthenticationType Kerberos (and the same on \(ctx.destination.name))"]
            + A2ConstrainedDelegation.delegationFixes(ctx, classes: A2ConstrainedDelegation.neededClasses(ctx),
                                                      anyProtocol: ctx.source.os.usesWinRMForRemoteManagement && ctx.remotelyManaged)
    }
}
