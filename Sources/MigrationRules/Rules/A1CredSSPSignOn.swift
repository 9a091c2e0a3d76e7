import Hosts

/// Rule A1: with CredSSP the source uses the user's own credentials, which exist there only when
/// the move is started from the user's sign-on on the source (console, Remote Desktop or a
/// CredSSP remote shell). Started anywhere else: SEC_E_NO_CREDENTIALS at the source.
enum A1CredSSPSignOn {
    static func check(_ ctx: MoveContext) -> MigrationFailure? {
        if ctx.startedAtSource && ctx.session.kind.hasReusableCredentials { return nil }
        let src = ctx.source.name
        let who = ctx.userDisplay
        let signOnFix = "Sign on to \(src) (console, Remote Desktop, or Enter-PSSession -ComputerName \(src) -Authentication CredSSP -Credential \(who)) and start the move there."
        // Kerberos is an alternative only where A5 (another domain) and A4 (a protected user) would not block it.
        let kerberosFix: [String] = ctx.source.domain == ctx.destination.domain && A4NonDelegableUsers.check(ctx) == nil
            ? ["Or use Kerberos: configure constrained delegation for \(src)$ to the destination's migration service and run Set-VMHost -ComputerName \(src) -VirtualMachineMigrationAuthenticationType Kerberos."]
            : []
        if A6RoundTrip.isRoundTrip(ctx) {
            return ctx.noCredentials(.a1, explanation: A6RoundTrip.explanation(ctx), fixes: [signOnFix] + kerberosFix, related: [.a6])
        }
        let why: String
        if ctx.startedAtSource {
            why = "The move was started from a Kerberos remote shell on \(src): that is a network logon, which leaves no reusable credentials on \(src) for CredSSP to pass on."
        } else {
            why = "The move was started on \(ctx.origin.name), not on \(src). With CredSSP, \(src) authenticates to \(ctx.destination.name) with the user's own credentials, which exist on \(src) only in a sign-on there."
        }
        return ctx.noCredentials(.a1, explanation: why, fixes: [signOnFix] + kerberosFix)
    }
}
