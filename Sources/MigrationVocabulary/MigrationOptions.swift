/// `Set-VMHost -VirtualMachineMigrationAuthenticationType`; WMI `AuthenticationType` (CredSSP = 0, Kerberos = 1).
public enum MigrationAuthenticationType: String, Sendable, Hashable, Codable, CaseIterable {
    case credSSP = "CredSSP"
    case kerberos = "Kerberos"

    /// The WMI `Msvm_VirtualSystemMigrationServiceSettingData.AuthenticationType` value.
    public var wmiValue: Int { self == .credSSP ? 0 : 1 }

    public init?(parsing text: String) {
        switch text.lowercased() {
        case "credssp", "0": self = .credSSP
        case "kerberos", "1": self = .kerberos
        default: return nil
        }
    }
}

/// `Set-VMHost -VirtualMachineMigrationPerformanceOption`.
public enum MigrationPerformanceOption: String, Sendable, Hashable, Codable, CaseIterable {
    case tcpIP = "TCPIP"
    case compression = "Compression"
    case smb = "SMB"

    public init?(parsing text: String) {
        switch text.lowercased().filter({ $0 != "/" }) {
        case "tcpip": self = .tcpIP
        case "compression": self = .compression
        case "smb": self = .smb
        default: return nil
        }
    }
}
