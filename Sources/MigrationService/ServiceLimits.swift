/// Limits that keep a daemon safe to expose to peers that have not (yet) authenticated, and to
/// authenticated peers that stall. The `limits` object of a host configuration; every key is optional.
public struct ServiceLimits: Sendable, Hashable, Codable {
    /// Bytes that must stay free on the VM directory's file system after an incoming VM is
    /// accepted (checked with `statvfs` before the offer is answered; ERROR_DISK_FULL otherwise).
    public var freeSpaceReserve: UInt64

    /// Defaults: 64 MiB reserve.
    public init(freeSpaceReserve: UInt64 = 64 * 1024 * 1024) {
        self.freeSpaceReserve = freeSpaceReserve
    }

    public static let `default` = ServiceLimits()

    private enum CodingKeys: String, CodingKey {
        case freeSpaceReserve
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = ServiceLimits.default
        self.init(freeSpaceReserve: try c.decodeIfPresent(UInt64.self, forKey: .freeSpaceReserve) ?? d.freeSpaceReserve)
    }
}
