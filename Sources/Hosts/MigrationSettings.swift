import Foundation

import MigrationVocabulary
import WindowsStatus

extension MigrationPerformanceOption {
    /// The default for a generation: Compression from 2012 R2, TCP/IP on 2012.
    public static func defaultOption(for os: OSGeneration) -> MigrationPerformanceOption {
        os >= .ws2012R2 ? .compression : .tcpIP
    }
}

/// One incoming live-migration network (`Add-VMMigrationNetwork 192.168.10.0/24 -Priority 1`).
public struct MigrationNetwork: Sendable, Hashable, Codable {
    public var subnet: IPv4Subnet
    /// Lower numbers are preferred.
    public var priority: Int

    public init(subnet: IPv4Subnet, priority: Int = 0) {
        self.subnet = subnet
        self.priority = priority
    }
}

/// A host's live-migration settings, with the defaults of docs/rules.md.
public struct MigrationSettings: Sendable, Hashable, Codable {
    /// `Enable-VMMigration` / `Disable-VMMigration`; off by default.
    public var enabled: Bool = false
    /// `-MaximumVirtualMachineMigrations`; 2 by default.
    public var maximumMigrations: Int = 2
    /// Incoming networks, kept sorted by priority then subnet.
    public private(set) var networks: [MigrationNetwork] = []
    /// `-UseAnyNetworkForMigration`; off by default.
    public var useAnyNetwork: Bool = false
    /// CredSSP by default.
    public var authenticationType: MigrationAuthenticationType = .credSSP
    public var performanceOption: MigrationPerformanceOption

    public init(os: OSGeneration) {
        performanceOption = .defaultOption(for: os)
    }

    /// WMI `EnableCompression`.
    public var enableCompression: Bool { performanceOption == .compression }
    /// WMI `EnableSmbTransport`.
    public var enableSmbTransport: Bool { performanceOption == .smb }

    /// `Add-VMMigrationNetwork`: adds or re-prioritises a subnet.
    public mutating func addNetwork(_ subnet: IPv4Subnet, priority: Int? = nil) {
        if let i = networks.firstIndex(where: { $0.subnet == subnet }) {
            if let priority { networks[i].priority = priority }
        } else {
            networks.append(MigrationNetwork(subnet: subnet, priority: priority ?? (networks.map(\.priority).max() ?? -1) + 1))
        }
        networks.sort { ($0.priority, $0.subnet.network, $0.subnet.prefixLength) < ($1.priority, $1.subnet.network, $1.subnet.prefixLength) }
    }

    /// `Remove-VMMigrationNetwork`; throws ERROR_NOT_FOUND when the subnet is not listed.
    public mutating func removeNetwork(_ subnet: IPv4Subnet) throws(HostError) {
        guard let i = networks.firstIndex(where: { $0.subnet == subnet }) else {
            throw HostError(status: .notFound, message: "Migration network \(subnet) is not configured")
        }
        networks.remove(at: i)
    }

    /// `Set-VMMigrationNetwork old -NewSubnet new -Priority p`.
    public mutating func setNetwork(_ subnet: IPv4Subnet, newSubnet: IPv4Subnet? = nil, priority: Int? = nil) throws(HostError) {
        guard let i = networks.firstIndex(where: { $0.subnet == subnet }) else {
            throw HostError(status: .notFound, message: "Migration network \(subnet) is not configured")
        }
        let p = priority ?? networks[i].priority
        networks.remove(at: i)
        addNetwork(newSubnet ?? subnet, priority: p)
    }

    /// The preferred listed network containing `address`, or nil.
    public func network(containing address: IPv4Address) -> MigrationNetwork? {
        networks.first { $0.subnet.contains(address) }
    }

    /// Contradictions a host of generation `os` would refuse.
    public func validate(for os: OSGeneration) throws(HostError) {
        if maximumMigrations < 1 {
            throw HostError(status: .invalidArgument,
                            message: "MaximumVirtualMachineMigrations must be at least 1 (got \(maximumMigrations))")
        }
        if os < .ws2012R2 && performanceOption != .tcpIP {
            throw HostError(status: .notSupported,
                            message: "Performance option \(performanceOption.rawValue) is not supported on Windows Server 2012; only TCPIP is")
        }
    }
}
