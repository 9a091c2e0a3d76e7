import Hosts

/// Rule S1: the article's migration traffic is unencrypted and it advises isolated networks.
/// This project protects the stream, and warns (never fails) when a destination accepts
/// migrations on any network.
enum S1Traffic {
    static func warn(_ ctx: MoveContext, _ run: inout RuleRun) {
        guard ctx.move.kind.movesVM, ctx.destination.migration.useAnyNetwork else { return }
        let d = ctx.destination.name
        run.warnings.append(RuleWarning(
            rule: .s1, host: d,
            message: "\(d) accepts live migrations on any network; migration traffic should stay on an isolated, trusted network.",
            fixes: ["Set-VMHost -ComputerName \(d) -UseAnyNetworkForMigration $false",
                    "Add-VMMigrationNetwork <isolated subnet, e.g. 192.168.10.0/24> -Priority 1 -ComputerName \(d)"]))
    }
}
