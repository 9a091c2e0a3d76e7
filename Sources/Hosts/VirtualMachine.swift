import MigrationVocabulary

/// A virtual machine on a host.
public struct VirtualMachine: Sendable, Hashable, Codable {
    public enum State: String, Sendable, Hashable, Codable, CaseIterable {
        case running = "Running"
        case off = "Off"
        case saved = "Saved"
        case paused = "Paused"
    }

    public var name: String
    public var state: State
    /// Where its configuration and disks live, e.g. `D:\VMs\VM1` or `\\fs01\vms\VM1`.
    public var storagePath: String
    /// The host it was last live-migrated from (nil: it has not moved). Rule A6 tells the round
    /// trip only when the VM really came from the host the user is signed on to.
    public var previousHost: String?

    public init(name: String, state: State = .running, storagePath: String? = nil) {
        self.name = name
        self.state = state
        self.storagePath = storagePath ?? "C:\\ProgramData\\Microsoft\\Windows\\Hyper-V\\\(name)"
    }

    public var key: String { name.lowercased() }

    /// The longest name Hyper-V accepts (``VirtualMachineName/maximumLength``).
    public static let maximumNameLength = VirtualMachineName.maximumLength

    /// Why `name` cannot name a virtual machine, or `nil` when it can (``VirtualMachineName/problem(_:)``).
    public static func nameProblem(_ name: String) -> String? { VirtualMachineName.problem(name) }
}
