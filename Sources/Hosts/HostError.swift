import WindowsStatus

/// A refused host operation (bad setting, unknown VM, …). Nothing was changed when this is thrown.
public struct HostError: Error, Sendable, Hashable, CustomStringConvertible {
    public var status: WindowsStatus
    public var message: String

    public init(status: WindowsStatus, message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { "\(message) [\(status.symbol) \(status.hex)]" }
}
