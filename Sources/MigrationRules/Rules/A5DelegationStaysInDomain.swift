import Directory
import WindowsStatus

/// Rule A5: classic constrained delegation works only when the source account and the
/// destination's service are in the same domain (the KDC's SEC_E_CROSSREALM_DELEGATION_FAILURE);
/// Hyper-V reports it as the seed's SEC_E_NO_CREDENTIALS.
enum A5DelegationStaysInDomain {
    static func check(_ ctx: MoveContext) -> MigrationFailure? {
        guard ctx.source.domain != ctx.destination.domain else { return nil }
        let s = ctx.source, d = ctx.destination
        return ctx.noCredentials(.a5,
            explanation: "\(s.name)$ is in \(s.domain) and \(d.name) is in \(d.domain); classic constrained delegation (msDS-AllowedToDelegateTo) cannot reach a service in another domain (\(WindowsStatus.crossRealmDelegationFailure.symbol) \(WindowsStatus.crossRealmDelegationFailure.hex)).",
            fixes: ["Use CredSSP for this move: Set-VMHost -ComputerName \(s.name) -VirtualMachineMigrationAuthenticationType CredSSP, sign on to \(s.name) and start the move there.",
                    "Or move between hosts of the same domain."])
    }
}
