import Foundation

/// The Windows Server generation a host runs. Ordered: later generations compare greater (rule P4).
public enum OSGeneration: String, Sendable, Hashable, Codable, CaseIterable, Comparable, CustomStringConvertible {
    case ws2012 = "2012"
    case ws2012R2 = "2012 R2"
    case ws2016 = "2016"
    case ws2019 = "2019"
    case ws2022 = "2022"
    case ws2025 = "2025"

    private var order: Int { OSGeneration.allCases.firstIndex(of: self) ?? 0 }

    public static func < (a: OSGeneration, b: OSGeneration) -> Bool { a.order < b.order }

    /// Parses `2012`, `2012 R2`, `2012R2`, `2012r2`, `Windows Server 2016 Datacenter`, …
    public init?(parsing text: String) {
        let t = text.lowercased().replacingOccurrences(of: " ", with: "")
        let found = OSGeneration.allCases.reversed().first { t.contains($0.rawValue.lowercased().replacingOccurrences(of: " ", with: "")) }
        guard let found else { return nil }
        self = found
    }

    /// Windows Server 2016 and later reach the source over WinRM when managed remotely (rule A2b).
    public var usesWinRMForRemoteManagement: Bool { self >= .ws2016 }

    /// Credential Guard is on by default from Windows Server 2025 (rule A7).
    public var credentialGuardByDefault: Bool { self >= .ws2025 }

    /// `Windows Server 2012 R2 Datacenter` (the `operatingSystem` attribute).
    public var productName: String { "Windows Server \(rawValue) Datacenter" }

    public var description: String { "Windows Server \(rawValue)" }
}
