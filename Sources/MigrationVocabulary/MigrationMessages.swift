import WindowsStatus

/// Which end of a migration failed.
public enum Stage: String, Sendable, Hashable, Codable {
    case source = "Source"
    case destination = "Destination"
}

/// Hyper-V's migration error texts, shared by the simulator and the real service.
public enum MigrationMessages {
    /// `Virtual machine migration operation failed at migration Source.`
    public static func headline(_ stage: Stage) -> String {
        "Virtual machine migration operation failed at migration \(stage.rawValue)."
    }

    /// The seed's two lines: the headline at the source, then
    /// `Failed to establish a connection with host <destination>: <text> (0x…).`
    public static func connectionFailure(destination: String, status: WindowsStatus) -> String {
        failure(stage: .source, reason: "Failed to establish a connection with host \(destination)", status: status)
    }

    /// P1's two lines: `User '<user>' does not have permission to perform live migration on host <host>: …`.
    public static func permissionDenied(user: String, host: String, stage: Stage,
                                        status: WindowsStatus = .accessDenied) -> String {
        failure(stage: stage, reason: "User '\(user)' does not have permission to perform live migration on host \(host)",
                status: status)
    }

    /// P4's reason: `The virtual machine '<vm>' cannot be moved to host <host>, which runs an earlier
    /// version of Windows Server` (the destination refuses a down-level move).
    public static func downLevelMove(vm: String, host: String) -> String {
        "The virtual machine '\(vm)' cannot be moved to host \(host), which runs an earlier version of Windows Server"
    }

    /// The headline, then `<reason>: <text> (0x…).`
    public static func failure(stage: Stage, reason: String, status: WindowsStatus) -> String {
        headline(stage) + "\n\(reason): \(status.windowsMessage)"
    }
}
