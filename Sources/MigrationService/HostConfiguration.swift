import Foundation
import MigrationVocabulary
import QEMU

/// One host's daemon configuration (a JSON file; see docs/migration-service.md).
public struct HostConfiguration: Sendable, Hashable, Codable {
    /// The host's name as users know it (`TestServer02`).
    public var name: String
    /// Its FQDN (`testserver02.delegation.test`): SPNs `host/<fqdn>` and
    /// `Microsoft Virtual System Migration Service/<fqdn>`.
    public var fqdn: String
    /// The address it binds and connects from (`127.0.0.12` in tests, `192.168.10.2` on a real host).
    public var address: String
    /// Kerberos realm of its principals.
    public var realm: String
    /// Keytab with `host/<fqdn>` and `Microsoft Virtual System Migration Service/<fqdn>`.
    public var keytab: String
    /// Keytab the host gets its own TGT from (S4U2Proxy); usually the same file.
    public var clientKeytab: String?
    /// Directory for the host's own ccache.
    public var ccacheDirectory: String
    /// P3: live migration enabled (incoming and outgoing).
    public var migrationEnabled: Bool
    /// Migration listener port (0 = ephemeral; default 6600).
    public var migrationPort: Int
    /// Management listener port (0 = ephemeral).
    public var managementPort: Int
    /// P1: principals in Administrators / Hyper-V Administrators (bare names get `@realm`).
    public var allowedUsers: [String]
    /// N1: incoming migration networks (CIDR).
    public var incomingNetworks: [IPv4Subnet]
    /// N1: accept migrations on any address.
    public var useAnyNetwork: Bool
    /// N2: simultaneous migrations.
    public var maximumMigrations: Int
    /// Default performance option of moves this host sources.
    public var performanceOption: PerformanceOption
    /// Connections of an SMB move.
    public var smbChannels: Int
    /// Where the VMs' state files are.
    public var vmDirectory: String
    /// Name resolution: FQDN (or short name) → address. No DNS, no /etc/hosts.
    public var hosts: [String: String]
    /// NetBIOS name of the realm's domain (`CONTOSO`), for Windows-style user names in texts.
    public var netbiosDomain: String?
    /// How this host authenticates the migrations it sources (`Set-VMHost
    /// -VirtualMachineMigrationAuthenticationType`). CredSSP (rule A1) needs the user's password from a CredSSP or
    /// console sign-on on this host; Kerberos (rule A2) uses constrained delegation. JSON without the key: CredSSP,
    /// Hyper-V's default; the Swift initializer defaults to Kerberos, what this service did before CredSSP existed.
    public var authenticationType: MigrationAuthenticationType
    /// A4: users this host knows as sensitive / Protected Users ("account is sensitive and cannot be delegated"):
    /// a CredSSP sign-on does not keep their credentials, so CredSSP moves fail with 0x8009030E.
    public var protectedUsers: [String]
    /// A7: Credential Guard is on: delivered credentials cannot be passed on, so CredSSP moves fail with 0x8009030E.
    public var credentialGuard: Bool
    /// PEM certificate (RSA) for CredSSP's TLS; nil with `tlsPrivateKey` nil: the daemon makes a self-signed one at
    /// start (its key authenticates nothing by itself: CredSSP binds it to the Kerberos context through pubKeyAuth).
    public var tlsCertificate: String?
    /// PEM private key of `tlsCertificate`.
    public var tlsPrivateKey: String?
    /// How this host runs QEMU (binary, run directory, the machine of incoming guests); nil: no QEMU guests,
    /// state files only.
    public var qemu: QEMUHostSettings?
    /// The VMs this host declares: QEMU guests the daemon starts (and moves live), or state files.
    public var virtualMachines: [VirtualMachineDeclaration]
    /// P4: this host's Windows Server generation (`"2012 R2"`). The source tells the destination the
    /// generation of the VMs it sends; a destination of an earlier generation refuses them, as
    /// Hyper-V does. nil (JSON without the key): not checked.
    public var osGeneration: OSGeneration?
    /// Limits that make the daemon safe to expose (JSON `limits`, every key optional; ``ServiceLimits``).
    public var limits: ServiceLimits = .default
    /// The protocol versions and protection suites accepted on migration connections, incoming and
    /// outgoing (JSON `protection`: `minimumProtocolVersion`, `suites`; default: all). ``ProtectionPolicy``.
    public var protection: ProtectionPolicy = .default

    public init(name: String, fqdn: String, address: String, realm: String, keytab: String,
                clientKeytab: String? = nil, ccacheDirectory: String, migrationEnabled: Bool = true,
                migrationPort: Int = WireProtocol.defaultMigrationPort, managementPort: Int = 0,
                allowedUsers: [String] = [], incomingNetworks: [IPv4Subnet] = [], useAnyNetwork: Bool = false,
                maximumMigrations: Int = 2, performanceOption: PerformanceOption = .compression, smbChannels: Int = 4,
                vmDirectory: String, hosts: [String: String] = [:], netbiosDomain: String? = nil,
                authenticationType: MigrationAuthenticationType = .credSSP, protectedUsers: [String] = [],
                credentialGuard: Bool = false, tlsCertificate: String? = nil, tlsPrivateKey: String? = nil,
                qemu: QEMUHostSettings? = nil, virtualMachines: [VirtualMachineDeclaration] = [],
                osGeneration: OSGeneration? = nil) {
        self.qemu = qemu
        self.virtualMachines = virtualMachines
        self.netbiosDomain = netbiosDomain
        self.name = name
        self.fqdn = fqdn
        self.address = address
        self.realm = realm
        self.keytab = keytab
        self.clientKeytab = clientKeytab
        self.ccacheDirectory = ccacheDirectory
        self.migrationEnabled = migrationEnabled
        self.migrationPort = migrationPort
        self.managementPort = managementPort
        self.allowedUsers = allowedUsers
        self.incomingNetworks = incomingNetworks
        self.useAnyNetwork = useAnyNetwork
        self.maximumMigrations = maximumMigrations
        self.performanceOption = performanceOption
        self.smbChannels = smbChannels
        self.vmDirectory = vmDirectory
        self.hosts = hosts
        self.authenticationType = authenticationType
        self.protectedUsers = protectedUsers
        self.credentialGuard = credentialGuard
        self.tlsCertificate = tlsCertificate
        self.tlsPrivateKey = tlsPrivateKey
        self.osGeneration = osGeneration
    }

    private enum CodingKeys: String, CodingKey {
        case name, fqdn, address, realm, keytab, clientKeytab, ccacheDirectory, migrationEnabled, migrationPort
        case managementPort, allowedUsers, incomingNetworks, useAnyNetwork, maximumMigrations, performanceOption
        case smbChannels, vmDirectory, hosts, netbiosDomain, authenticationType, protectedUsers, credentialGuard
        case tlsCertificate, tlsPrivateKey, osGeneration
        case qemu, virtualMachines
        case limits, protection
    }

    /// Optional keys take their defaults (migration enabled, port 6600, management port 0, N2 = 2,
    /// Compression, 4 SMB channels, no hosts, no NetBIOS name, CredSSP authentication, no protected users,
    /// no Credential Guard, a generated TLS certificate).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(name: try c.decode(String.self, forKey: .name),
                  fqdn: try c.decode(String.self, forKey: .fqdn),
                  address: try c.decode(String.self, forKey: .address),
                  realm: try c.decode(String.self, forKey: .realm),
                  keytab: try c.decodeIfPresent(String.self, forKey: .keytab) ?? Self.systemKeytab,
                  clientKeytab: try c.decodeIfPresent(String.self, forKey: .clientKeytab),
                  ccacheDirectory: try c.decode(String.self, forKey: .ccacheDirectory),
                  migrationEnabled: try c.decodeIfPresent(Bool.self, forKey: .migrationEnabled) ?? true,
                  migrationPort: try c.decodeIfPresent(Int.self, forKey: .migrationPort) ?? WireProtocol.defaultMigrationPort,
                  managementPort: try c.decodeIfPresent(Int.self, forKey: .managementPort) ?? 0,
                  allowedUsers: try c.decodeIfPresent([String].self, forKey: .allowedUsers) ?? [],
                  incomingNetworks: try c.decodeIfPresent([IPv4Subnet].self, forKey: .incomingNetworks) ?? [],
                  useAnyNetwork: try c.decodeIfPresent(Bool.self, forKey: .useAnyNetwork) ?? false,
                  maximumMigrations: try c.decodeIfPresent(Int.self, forKey: .maximumMigrations) ?? 2,
                  performanceOption: try c.decodeIfPresent(PerformanceOption.self, forKey: .performanceOption) ?? .compression,
                  smbChannels: try c.decodeIfPresent(Int.self, forKey: .smbChannels) ?? 4,
                  vmDirectory: try c.decode(String.self, forKey: .vmDirectory),
                  hosts: try c.decodeIfPresent([String: String].self, forKey: .hosts) ?? [:],
                  netbiosDomain: try c.decodeIfPresent(String.self, forKey: .netbiosDomain),
                  authenticationType: try c.decodeIfPresent(MigrationAuthenticationType.self, forKey: .authenticationType)
                      ?? .credSSP,
                  protectedUsers: try c.decodeIfPresent([String].self, forKey: .protectedUsers) ?? [],
                  credentialGuard: try c.decodeIfPresent(Bool.self, forKey: .credentialGuard) ?? false,
                  tlsCertificate: try c.decodeIfPresent(String.self, forKey: .tlsCertificate),
                  tlsPrivateKey: try c.decodeIfPresent(String.self, forKey: .tlsPrivateKey),
                  qemu: try c.decodeIfPresent(QEMUHostSettings.self, forKey: .qemu),
                  virtualMachines: try c.decodeIfPresent([VirtualMachineDeclaration].self, forKey: .virtualMachines) ?? [],
                  osGeneration: try c.decodeIfPresent(OSGeneration.self, forKey: .osGeneration))
        limits = try c.decodeIfPresent(ServiceLimits.self, forKey: .limits) ?? .default
        protection = try c.decodeIfPresent(ProtectionPolicy.self, forKey: .protection) ?? .default
    }

    /// The keytab of a configuration that names none: the system's (what MIT's tools use by default).
    public static let systemKeytab = "/etc/krb5.keytab"

    /// Reads a JSON file.
    public static func load(_ path: String) throws(MigrationServiceError) -> HostConfiguration {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .configuration("Cannot read the host configuration \(path)", stage: .source)
        }
        do {
            let configuration = try JSONDecoder().decode(HostConfiguration.self, from: data)
            try configuration.validate()
            return configuration
        } catch let error as MigrationServiceError {
            throw error
        } catch {
            throw .configuration("Invalid host configuration " + JSONDecodeProblem(error, in: data).message(file: path), stage: .source)
        }
    }

    /// Writes the configuration as JSON (sorted keys).
    public func save(_ path: String) throws(MigrationServiceError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do {
            try encoder.encode(self).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw .configuration("Cannot write \(path): \(error)", stage: .source)
        }
    }

    /// Literal IP addresses (any: loopback is the tests' choice, not a rule), ports in range, N2 ≥ 1, VM declarations.
    public func validate() throws(MigrationServiceError) {
        try ServiceEndpoint.checkAddress(address)
        for (name, a) in hosts {
            do throws(MigrationServiceError) {
                try ServiceEndpoint.checkAddress(a)
            } catch {
                throw .configuration("hosts[\(name)]: \(error.message)", stage: .source)
            }
        }
        guard (0...65535).contains(migrationPort), (0...65535).contains(managementPort) else {
            throw .configuration("Ports must be within 0…65535", stage: .source)
        }
        guard (tlsCertificate == nil) == (tlsPrivateKey == nil) else {
            throw .configuration("tlsCertificate and tlsPrivateKey go together", stage: .source)
        }
        guard maximumMigrations >= 1 else { throw .configuration("maximumMigrations must be at least 1", stage: .source) }
        var seen: Set<String> = []
        for vm in virtualMachines {
            try VMStore.checkName(vm.name, stage: .source)
            guard seen.insert(vm.name).inserted else {
                throw .configuration("virtualMachines: '\(vm.name)' is declared twice", stage: .source)
            }
            if let machine = vm.qemu {
                guard qemu != nil else {
                    throw .configuration("virtualMachines: '\(vm.name)' is a QEMU guest but the configuration has no qemu settings",
                                         stage: .source)
                }
                if let problem = machine.problem {
                    throw .configuration("virtualMachines: '\(vm.name)': \(problem)", stage: .source)
                }
            }
        }
        try limits.validate()
        if let problem = protection.problem { throw .configuration(problem, stage: .source) }
    }

    /// Resolves a host name through `hosts` (its own names resolve to `address`).
    public func resolve(_ host: String) -> String? {
        if host == fqdn || host == name { return address }
        return hosts[host] ?? hosts.first { $0.key.caseInsensitiveCompare(host) == .orderedSame }?.value
    }

    /// What the destination listener enforces.
    public var destinationConfiguration: DestinationConfiguration {
        DestinationConfiguration(hostName: name, fqdn: fqdn, realm: realm, keytab: keytab, vmDirectory: vmDirectory,
                                 allowedUsers: allowedUsers, incomingNetworks: incomingNetworks,
                                 useAnyNetwork: useAnyNetwork, maximumMigrations: maximumMigrations,
                                 migrationEnabled: migrationEnabled, netbiosDomain: netbiosDomain,
                                 osGeneration: osGeneration, limits: limits, protection: protection)
    }

    /// P1 for this host.
    public func allows(_ principal: String) -> Bool { destinationConfiguration.allows(principal) }

    /// Rules A4 and A7: why this host cannot pass `principal`'s delivered password on with CredSSP,
    /// or nil when it can.
    public func credSSPRefusal(for principal: String) -> String? {
        if isProtected(principal) {
            return "\(principal) is a protected user (sensitive, cannot be delegated): no reusable credentials (rule A4)"
        }
        if credentialGuard {
            return "Credential Guard on \(name) does not let CredSSP pass credentials on (rule A7)"
        }
        return nil
    }

    /// Rule P3 at the source: the error when live migration is disabled here, or nil.
    public var migrationDisabledError: MigrationServiceError? {
        migrationEnabled ? nil : .failure(.configuration, .notSupported, stage: .source,
                                          reason: "Live migration is not enabled on host \(name)")
    }

    /// `NETBIOS\user` for a user of this realm (see ``netbiosDomain``), else the principal.
    public func displayName(of principal: String) -> String { destinationConfiguration.displayName(of: principal) }

    /// A4: whether `principal` is listed in `protectedUsers` (bare names get `@realm`).
    public func isProtected(_ principal: String) -> Bool {
        protectedUsers.contains { $0 == principal || (!$0.contains("@") && "\($0)@\(realm)" == principal) }
    }
}
