/// The Hyper-V rule for virtual machine names, shared by the simulator (`Hosts`) and the real
/// service (`MigrationService`, where a name also becomes a file name).
public enum VirtualMachineName {
    /// The longest name Hyper-V accepts.
    public static let maximumLength = 100

    /// Why `name` cannot name a virtual machine, or `nil` when it can.
    ///
    /// Hyper-V names are 1–100 characters; because a name also becomes a file name (here and on
    /// the real migration path), it may not contain control characters or any of `/ \ : * ? " < > |`,
    /// be `.` or `..`, or start or end with a space.
    public static func problem(_ name: String) -> String? {
        if name.isEmpty { return "A virtual machine name cannot be empty" }
        if name.count > maximumLength {
            return "A virtual machine name has at most \(maximumLength) characters (this one has \(name.count))"
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
