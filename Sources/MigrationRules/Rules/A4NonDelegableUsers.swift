import Directory
import Hosts

/// Rule A4: a user marked "sensitive and cannot be delegated" or in Protected Users (directly or
/// through nested groups) cannot be delegated (Kerberos fails) and leaves no reusable
/// credentials for CredSSP (CredSSP fails).
enum A4NonDelegableUsers {
    static let protectedUsersKey = Group.protectedUsers.lowercased()

    static func check(_ ctx: MoveContext) -> MigrationFailure? {
        let dir = ctx.directory
        let dc = ctx.source.logonDC
        let sameDomain = ctx.user.domain == ctx.source.domain
        guard let account = sameDomain ? ctx.sourceReplica?.users[ctx.user.name] : dir.user(ctx.user, on: dc) else { return nil }
        let protected = dir.isMember(ctx.user, of: protectedUsers(ctx), replica: sameDomain ? ctx.sourceReplica : nil,
                                     replicaDomain: ctx.source.domain, on: dc)
        guard account.sensitive || protected else { return nil }
        return failure(ctx, account: account, protected: protected)
    }

    static func protectedUsers(_ ctx: MoveContext) -> PrincipalRef {
        PrincipalRef(normalizedDomain: ctx.user.domain, name: protectedUsersKey)
    }

    /// The chain of groups that puts the user in Protected Users, as the source's logon DC sees it.
    static func protectionPath(_ ctx: MoveContext) -> [PrincipalRef]? {
        ctx.directory.membershipPath(of: ctx.user, in: protectedUsers(ctx), on: ctx.source.logonDC)
    }

    private static func failure(_ ctx: MoveContext, account: UserAccount, protected: Bool) -> MigrationFailure {
        let dir = ctx.directory
        let who = ctx.userDisplay
        var reasons: [String] = []
        var fixes: [String] = ["Start the move with an account that may be delegated."]
        if account.sensitive {
            reasons.append("is marked \"Account is sensitive and cannot be delegated\"")
            fixes.append("Set-ADAccountControl -Identity \(account.samAccountName) -AccountNotDelegated $false (weakens the account's protection)")
            fixes.append("or with samba-tool: samba-tool user sensitive \(account.samAccountName) off")
        }
        if protected, let path = protectionPath(ctx) {
            let names = path.map { dir.group($0, on: ctx.source.logonDC)?.samAccountName ?? $0.name }
            if path.count == 1 {
                reasons.append("is a member of Protected Users")
            } else {
                reasons.append("is in Protected Users through nested groups: \(account.samAccountName) is in "
                               + names.reversed().joined(separator: ", which is in "))
            }
            let holder = names[names.count - 1]
            fixes.append("Remove-ADGroupMember -Identity '\(holder)' -Members '\(account.samAccountName)' -Confirm:$false (weakens the account's protection)")
            fixes.append("or with samba-tool: samba-tool group removemembers '\(holder)' \(account.samAccountName)")
            if path.count > 1 {
                fixes.append("or take '\(names[1])' out of Protected Users (it protects all its members): Remove-ADGroupMember -Identity '\(names[0])' -Members '\(names[1])' -Confirm:$false")
            }
        }
        let how = ctx.authentication == .kerberos
            ? "its Kerberos tickets cannot be delegated to \(ctx.destination.name)"
            : "it leaves no reusable credentials for CredSSP to pass on to \(ctx.destination.name)"
        return ctx.noCredentials(.a4, explanation: "\(who) \(reasons.joined(separator: " and ")), so \(how).", fixes: fixes)
    }
}
