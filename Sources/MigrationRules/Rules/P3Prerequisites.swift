import Directory
import Hosts
import WindowsStatus

/// Rule P3: the hypervisor role on both hosts, the VM on the source, live migration enabled on both.
/// Each missing piece is its own error.
enum P3Prerequisites {
    /// The source runs the Hyper-V role (its VMMS answers).
    static func sourceRole(_ ctx: MoveContext) -> MigrationFailure? {
        guard !ctx.source.hypervisorInstalled else { return nil }
        return roleMissing(ctx, ctx.source, stage: .source)
    }

    /// The VM exists on the source, and live migration is enabled there (for moves of the VM).
    static func sourceVM(_ ctx: MoveContext) -> MigrationFailure? {
        if ctx.source.key == ctx.destination.key {
            return ctx.failure(.p3, .invalidArgument, stage: .source,
                               message: ctx.headline(.source) + "\nThe source and destination host are the same (\(ctx.source.name)): \(WindowsStatus.invalidArgument.windowsMessage)",
                               explanation: "A move needs two different hosts.",
                               fixes: ["Name another host as the destination."])
        }
        if ctx.source.virtualMachines[ctx.move.keys.vm] == nil {
            let others = ctx.source.virtualMachines.values.map(\.name).sorted()
            return ctx.failure(.p3, .notFound, stage: .source,
                               message: ctx.headline(.source) + "\nHyper-V was unable to find a virtual machine with name '\(ctx.move.vm)' on host \(ctx.source.name): \(WindowsStatus.notFound.windowsMessage)",
                               explanation: "There is no virtual machine named \(ctx.move.vm) on \(ctx.source.name)" +
                                   (others.isEmpty ? " (it has none)." : " (it has \(others.joined(separator: ", "))).") +
                                   " If it was moved earlier, the source is now the host it was moved to.",
                               fixes: ["Get-VM -ComputerName \(ctx.source.name)",
                                       "Start the move from the host that runs \(ctx.move.vm) now, or create it there."])
        }
        if ctx.move.kind.movesVM && !ctx.source.migration.enabled {
            return migrationDisabled(ctx, ctx.source, stage: .source)
        }
        return nil
    }

    /// The destination runs Hyper-V and accepts incoming live migrations (for moves of the VM).
    static func destination(_ ctx: MoveContext) -> MigrationFailure? {
        guard ctx.move.kind.movesVM else { return nil }
        if !ctx.destination.hypervisorInstalled { return roleMissing(ctx, ctx.destination, stage: .destination) }
        if !ctx.destination.migration.enabled { return migrationDisabled(ctx, ctx.destination, stage: .destination) }
        return nil
    }

    private static func roleMissing(_ ctx: MoveContext, _ host: SimulatedHost, stage: Stage) -> MigrationFailure {
        let status = WindowsStatus.serviceDoesNotExist
        return ctx.failure(.p3, status, stage: stage,
                           message: ctx.headline(stage) + "\nThe Hyper-V Virtual Machine Management service is not installed on host \(host.name): \(status.windowsMessage)",
                           explanation: "\(host.name) does not have the Hyper-V role, so it can neither send nor receive virtual machines" +
                               (host.hypervisorInstalled ? "." : " (a management workstation can only start moves)."),
                           fixes: ["Install-WindowsFeature -Name Hyper-V -IncludeManagementTools -Restart -ComputerName \(host.name)"])
    }

    private static func migrationDisabled(_ ctx: MoveContext, _ host: SimulatedHost, stage: Stage) -> MigrationFailure {
        let status = WindowsStatus.notSupported
        return ctx.failure(.p3, status, stage: stage,
                           message: ctx.headline(stage) + "\nLive migration is not enabled on host \(host.name): \(status.windowsMessage)",
                           explanation: "Incoming and outgoing live migrations are off on \(host.name) (the default); both hosts must enable them.",
                           fixes: ["Enable-VMMigration -ComputerName \(host.name)"])
    }
}
