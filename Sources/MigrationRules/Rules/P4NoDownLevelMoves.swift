import Hosts
import WindowsStatus

/// Rule P4: the destination's generation must be the same as or newer than the source's
/// (2012 → 2012 R2 works; 2012 R2 → 2012 is refused by the destination).
enum P4NoDownLevelMoves {
    static func check(_ ctx: MoveContext) -> MigrationFailure? {
        guard ctx.move.kind.movesVM, ctx.destination.os < ctx.source.os else { return nil }
        let status = WindowsStatus.notSupported
        return ctx.failure(.p4, status, stage: .destination,
                           message: MigrationMessages.failure(stage: .destination,
                                                              reason: MigrationMessages.downLevelMove(vm: ctx.move.vm, host: ctx.destination.name),
                                                              status: status),
                           explanation: "\(ctx.source.name) runs \(ctx.source.os) and \(ctx.destination.name) runs \(ctx.destination.os); moving a virtual machine to a down-level Hyper-V host is not supported.",
                           fixes: ["Move \(ctx.move.vm) to a host running \(ctx.source.os) or later, or upgrade \(ctx.destination.name)."])
    }
}
