import Directory
import Hosts
import WindowsStatus

/// Rule P1: the user must be in local Administrators or Hyper-V Administrators on both hosts,
/// directly or through a domain group (nested to any depth). Otherwise E_ACCESSDENIED.
enum P1PermissionToMigrate {
    /// Whether `user` may migrate on `host`, reading groups from the host's logon DC.
    static func isAllowed(_ user: PrincipalRef, on host: SimulatedHost, directory: Directory, replica: DirectoryReplica?) -> Bool {
        let admins = host.localGroups[.administrators]
        let hyperV = host.localGroups[.hyperVAdministrators]
        if admins?.contains(user) == true || hyperV?.contains(user) == true { return true }
        if let admins {
            for m in admins where directory.isMember(user, of: m, replica: replica, replicaDomain: host.domain, on: host.logonDC) { return true }
        }
        if let hyperV {
            for m in hyperV where directory.isMember(user, of: m, replica: replica, replicaDomain: host.domain, on: host.logonDC) { return true }
        }
        return false
    }

    static func check(_ ctx: MoveContext, on host: SimulatedHost, stage: Stage) -> MigrationFailure? {
        let replica = host.key == ctx.source.key ? ctx.sourceReplica : ctx.destinationReplica
        if isAllowed(ctx.user, on: host, directory: ctx.directory, replica: replica) { return nil }
        let status = WindowsStatus.accessDenied
        let who = ctx.userDisplay
        return ctx.failure(.p1, status, stage: stage,
                           message: MigrationMessages.permissionDenied(user: who, host: host.name, stage: stage, status: status),
                           explanation: "\(who) is neither in Administrators nor in Hyper-V Administrators on \(host.name) (directly or through a domain group); migrating needs that membership on both hosts.",
                           fixes: ["On \(host.name): net localgroup \"Hyper-V Administrators\" \(who) /add",
                                   "or: Add-LocalGroupMember -Group 'Hyper-V Administrators' -Member '\(who)' (Windows Server 2016 and later)"])
    }
}

extension World {
    /// Rule P1 on one host: whether `user` is in its Administrators or Hyper-V Administrators,
    /// directly or through domain groups, as the host's logon DC sees them. The real service's
    /// allowed users are derived from this, so the two cannot drift.
    public func mayMigrate(_ user: PrincipalRef, on host: SimulatedHost) -> Bool {
        P1PermissionToMigrate.isAllowed(user, on: host, directory: directory,
                                        replica: directory.replica(of: host.domain, on: host.logonDC))
    }
}
