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

    /// The longest name Hyper-V accepts.
    public static let maximumNameLength = 100

    /// Why `name` cannot name a virtual machine, or `nil` when it can.
    ///
    /// Hyper-V names are 1–100 characters; because a name also becomes a file name (here and on
    /// the real migration path), it may not contain control characters or any of `/ \ : * ? " < > |`,
    /// be `.` or `..`, or start or end with a space.
    public static func nameProblem(_ name: String) -> String? {
        if name.isEmpty { return "A virtual machine name cannot be empty" }
        if name.count > maximumNameLength {
            return "A virtual machine name has at most \(maximumNameLength) characters (this one has \(name.count))"
        }
        if name == "." || name == ".." { return "'\(name)' cannot name a virtual machine" }
        if name.first == " " || name.last == " " { return "A virtual machine name cannot start or end with a space" }
        let forbidden: Set<Character> = ["/", "\\", ":", "*", "?", "\"", "<", ">", "|"]
        if let bad = name.first(where: { forbidden.contains($0) || $0.unicodeScalars.contains { $0.properties.generalCategory == .control } }) {
            let shown = bad.unicodeScalars.map { scalar -> String in
                guard scalar.properties.generalCategory == .control else { return String(scalar) }
                let hex = String(scalar.value, radix: 16, uppercase: true)
                return "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
            }.joined()
            return "A virtual machine name cannot contain '\(shown)'"
        }
        return nil
    }
}
