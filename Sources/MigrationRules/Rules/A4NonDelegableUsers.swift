import Directory
import Hosts

/// Rule A4: a user marked "sensitive and cannot be delegated" or in Protected Users cannot be
/// delegated (Kerberos fails) and leaves no reusable credentials for CredSSP (CredSSP fails).
enum A4NonDelegableUsers {
    static let protectedUsersKey = Group.protectedUsers.lowercased()

    static func check(_ ctx: MoveContext) -> MigrationFailure? {
        let dir = ctx.directory
        let dc = ctx.source.logonDC
        let sameDomain = ctx.user.domain == ctx.source.domain
        guard let account = sameDomain ? ctx.sourceReplica?.users[ctx.user.name] : dir.user(ctx.user, on: dc) else { return nil }
        let protected = dir.isMember(ctx.user, of: PrincipalRef(normalizedDomain: ctx.user.domain, name: protectedUsersKey),
                                     replica: sameDomain ? ctx.sourceReplica : nil, replicaDomain: ctx.source.domain, on: dc)
        guard account.sensitive || protected else { return nil }
        let who = ctx.userDisplay
        var reasons: [String] = []
        var fixes: [String] = []
        if account.sensitive {
            reasons.append("is marked \"Account is sensitive and cannot be delegated\"")
            fixes.append("Set-ADAccountControl -Identity \(account.samAccountName) -AccountNotDelegated $false (weakens the account's protection)")
        }
        if protected {
            reasons.append("is a member of Protected Users")
            fixes.append("Remove-ADGroupMember -Identity 'Protected Users' -Members \(account.samAccountName) (weakens the account's protection)")
        }
        fixes.insert("Start the move with an account that may be delegated.", at: 0)
        let how = ctx.authentication == .kerberos
            ? "its Kerberos tickets cannot be delegated to \(ctx.destination.name)"
            : "it leaves no reusable credentials for CredSSP to pass on to \(ctx.destination.name)"
        return ctx.noCredentials(.a4, explanation: "\(who) \(reasons.joined(separator: " and ")), so \(how).", fixes: fixes)
    }
}
