/// A failure of a QEMU process or of its QMP monitor.
public struct QEMUError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// The process could not be started (no binary, bad arguments, it exited at once).
        case launch
        /// The QMP monitor could not be reached, or the connection to it ended.
        case monitor
        /// QEMU answered a command with an error (`class`, `desc`).
        case command
        /// QEMU's answer was not what QMP promises.
        case malformed
        /// A migration on this QEMU failed or was cancelled.
        case migration
        /// Waiting for a state took longer than allowed.
        case timeout
    }

    public var kind: Kind
    /// What happened, for logs and error details.
    public var message: String
    /// QMP's error class (`GenericError`, `CommandNotFound`, …) for `.command`.
    public var errorClass: String?

    public init(_ kind: Kind, _ message: String, errorClass: String? = nil) {
        self.kind = kind
        self.message = message
        self.errorClass = errorClass
    }

    public var description: String {
        errorClass.map { "QEMU \(kind): \(message) (\($0))" } ?? "QEMU \(kind): \(message)"
    }
}
