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
            fixes: A2ConstrainedDelegation.delegationFixes(ctx, classes: A2ConstrainedDelegation.neededClasses(ctx), anyProtocol: ctx.source.os.usesWinRMForRemoteManagement) +
                ["Set-VMHost -ComputerName \(src) -VirtualMachineMigrationAuthenticationType Kerberos (and the same on \(ctx.destination.name))"])
    }
}
