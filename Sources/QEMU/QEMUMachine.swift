/// What a QEMU guest is (what `New-VM` decides): memory, machine type, accelerator and any further
/// arguments (devices, a `-device loader` blob, …). Disks and networks come through `extraArguments`.
public struct QEMUMachine: Sendable, Hashable, Codable {
    /// Guest RAM in MiB (`-m`).
    public var memoryMiB: Int
    /// `-machine` type (`pc`, `q35`).
    public var machine: String
    /// Accelerator (`tcg`, `kvm`).
    public var accel: String
    /// More arguments, passed as they are after the ones this module sets.
    public var extraArguments: [String]

    public init(memoryMiB: Int, machine: String = "pc", accel: String = "tcg", extraArguments: [String] = []) {
        self.memoryMiB = memoryMiB
        self.machine = machine
        self.accel = accel
        self.extraArguments = extraArguments
    }

    private enum CodingKeys: String, CodingKey { case memoryMiB, machine, accel, extraArguments }

    /// `machine` defaults to `pc`, `accel` to `tcg`, no extra arguments.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(memoryMiB: try c.decode(Int.self, forKey: .memoryMiB),
                  machine: try c.decodeIfPresent(String.self, forKey: .machine) ?? "pc",
                  accel: try c.decodeIfPresent(String.self, forKey: .accel) ?? "tcg",
                  extraArguments: try c.decodeIfPresent([String].self, forKey: .extraArguments) ?? [])
    }

    /// Whether the values can start a QEMU (memory 1 MiB … 1 TiB, names without separators).
    public var problem: String? {
        guard (1...(1 << 20)).contains(memoryMiB) else { return "memoryMiB \(memoryMiB) is outside 1…1048576" }
        for (field, value) in [("machine", machine), ("accel", accel)] {
            guard !value.isEmpty, value.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
                return "\(field) '\(value)' is not a QEMU \(field) name"
            }
        }
        return nil
    }
}

/// How QEMU runs on a host: which binary, and where the daemon keeps its sockets and logs.
public struct QEMUHostSettings: Sendable, Hashable, Codable {
    /// The emulator (`qemu-system-x86_64`, looked up in `PATH` unless it has a `/`).
    public var binary: String
    /// A directory only this daemon uses (mode 0700): QMP and migration sockets, QEMU's logs.
    public var runDirectory: String
    /// Machine type and accelerator of the QEMU a destination starts for an incoming guest.
    public var machine: String
    public var accel: String
    /// Largest guest memory an incoming migration may ask for, in MiB.
    public var maximumIncomingMemoryMiB: Int

    public init(binary: String = "qemu-system-x86_64", runDirectory: String, machine: String = "pc",
                accel: String = "tcg", maximumIncomingMemoryMiB: Int = 64 * 1024) {
        self.binary = binary
        self.runDirectory = runDirectory
        self.machine = machine
        self.accel = accel
        self.maximumIncomingMemoryMiB = maximumIncomingMemoryMiB
    }

    private enum CodingKeys: String, CodingKey { case binary, runDirectory, machine, accel, maximumIncomingMemoryMiB }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(binary: try c.decodeIfPresent(String.self, forKey: .binary) ?? "qemu-system-x86_64",
                  runDirectory: try c.decode(String.self, forKey: .runDirectory),
                  machine: try c.decodeIfPresent(String.self, forKey: .machine) ?? "pc",
                  accel: try c.decodeIfPresent(String.self, forKey: .accel) ?? "tcg",
                  maximumIncomingMemoryMiB: try c.decodeIfPresent(Int.self, forKey: .maximumIncomingMemoryMiB) ?? 64 * 1024)
    }
}
