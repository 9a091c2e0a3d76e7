import Hosts
import WindowsStatus

/// Rule N1: the destination accepts a live migration only on one of its addresses inside a listed
/// incoming network (`Add-VMMigrationNetwork`), unless it uses any network. Otherwise the
/// connection is refused (WSAECONNREFUSED) before any authentication.
enum N1Networks {
    static func check(_ ctx: MoveContext, _ run: inout RuleRun) -> MigrationFailure? {
        guard ctx.move.kind.movesVM else { return nil }
        let dest = ctx.destination
        let settings = dest.migration
        var requested: IPv4Address? = nil
        if let text = ctx.move.destinationAddress {
            guard let a = IPv4Address(text) else { return refused(ctx, reason: "'\(text)' is not an IPv4 address.") }
            requested = a
        }
        if settings.useAnyNetwork {
            run.address = requested ?? dest.addresses.first
            return nil
        }
        if let requested {
            if settings.network(containing: requested) != nil { run.address = requested; return nil }
            return refused(ctx, reason: "\(requested) is not inside any of \(dest.name)'s incoming migration networks (\(list(settings))).")
        }
        for network in settings.networks {
            for a in dest.addresses where network.subnet.contains(a) {
                run.address = a
                return nil
            }
        }
        let why = settings.networks.isEmpty
            ? "\(dest.name) lists no incoming migration networks and does not use any network (the defaults)."
            : "none of \(dest.name)'s addresses (\(dest.addresses.map(\.description).joined(separator: ", "))) is inside its incoming migration networks (\(list(settings)))."
        return refused(ctx, reason: why)
    }

    private static func list(_ s: MigrationSettings) -> String {
        s.networks.isEmpty ? "none" : s.networks.map { "\($0.subnet) priority \($0.priority)" }.joined(separator: ", ")
    }

    private static func refused(_ ctx: MoveContext, reason: String) -> MigrationFailure {
        let dest = ctx.destination
        let status = WindowsStatus.connectionRefused
        var fixes: [String] = []
        if let a = ctx.move.destinationAddress.flatMap(IPv4Address.init) ?? dest.addresses.first,
           let subnet = IPv4Subnet("\(a)/24") {
            fixes.append("Add-VMMigrationNetwork \(subnet) -Priority 1 -ComputerName \(dest.name)")
        } else {
            fixes.append("Add-VMMigrationNetwork <subnet of \(dest.name)'s migration address> -ComputerName \(dest.name)")
        }
        fixes.append("or (not recommended, S1): Set-VMHost -ComputerName \(dest.name) -UseAnyNetworkForMigration $true")
        return ctx.failure(.n1, status, stage: .source, message: ctx.connectionMessage(status),
                           explanation: "The destination refuses the connection: " + reason, fixes: fixes)
    }
}
