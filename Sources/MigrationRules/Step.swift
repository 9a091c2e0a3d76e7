import Directory
import Hosts

/// One change to the world, as a scenario line or a CLI cmdlet makes it.
///
/// Names are as users type them: hosts by short name or FQDN, users as `alice`, `CONTOSO\alice`
/// or `alice@contoso.com`, DCs by name. `dc: nil` means the domain's first DC (or the acting
/// host's logon DC where one is implied).
public enum Step: Sendable, Hashable, Codable {
    // Sessions
    case signOn(user: String, host: String, kind: SignOnKind, from: String? = nil)
    /// Ends the user's sessions of `kind` (all when nil).
    case signOff(user: String, host: String, kind: SignOnKind? = nil)

    // Hyper-V settings (cmdlets)
    /// `Enable-VMMigration`.
    case enableMigration(host: String)
    /// `Disable-VMMigration`.
    case disableMigration(host: String)
    /// `Set-VMHost -MaximumVirtualMachineMigrations n`.
    case setMaximumMigrations(host: String, count: Int)
    /// `Add-VMMigrationNetwork 192.168.10.0/24 -Priority p`.
    case addMigrationNetwork(host: String, subnet: String, priority: Int? = nil)
    /// `Remove-VMMigrationNetwork 192.168.10.0/24`.
    case removeMigrationNetwork(host: String, subnet: String)
    /// `Set-VMMigrationNetwork 192.168.10.0/24 -NewSubnet … -Priority p`.
    case setMigrationNetwork(host: String, subnet: String, newSubnet: String? = nil, priority: Int? = nil)
    /// `Set-VMHost -UseAnyNetworkForMigration $true|$false`.
    case setUseAnyNetwork(host: String, enabled: Bool)
    /// `Set-VMHost -VirtualMachineMigrationAuthenticationType Kerberos|CredSSP`.
    case setAuthenticationType(host: String, type: MigrationAuthenticationType)
    /// `Set-VMHost -VirtualMachineMigrationPerformanceOption TCPIP|Compression|SMB`.
    case setPerformanceOption(host: String, option: MigrationPerformanceOption)
    /// Turns Credential Guard on or off (rule A7).
    case setCredentialGuard(host: String, enabled: Bool)
    /// `New-VM`.
    case createVM(host: String, name: String, state: VirtualMachine.State = .running, storagePath: String? = nil)
    /// Adds a domain user or group to a host's local group.
    case addLocalGroupMember(host: String, group: LocalGroup, member: String)
    case removeLocalGroupMember(host: String, group: LocalGroup, member: String)

    // Directory (written on `dc`, replicated later)
    /// `Set-ADComputer -Add @{'msDS-AllowedToDelegateTo'=…}` by `user` (rule P2).
    case addDelegation(computer: String, services: [String], by: String, dc: String? = nil)
    /// `Set-ADComputer -Remove @{'msDS-AllowedToDelegateTo'=…}` by `user` (rule P2).
    case removeDelegation(computer: String, services: [String], by: String, dc: String? = nil)
    /// Sets the Delegation tab's choice by `user` (rule P2).
    case setDelegationKind(computer: String, kind: DelegationKind, by: String, dc: String? = nil)
    case addGroupMember(group: String, member: String, dc: String? = nil)
    case removeGroupMember(group: String, member: String, dc: String? = nil)
    /// "Account is sensitive and cannot be delegated".
    case setSensitive(user: String, sensitive: Bool, dc: String? = nil)
    /// Brings every DC up to date.
    case replicateAll
    /// `repadmin /replicate <to> <from>`: pulls `from`'s changes into `to`.
    case replicate(from: String, to: String)

    // Time and tickets
    /// Moves the clock; delayed replication and ticket expiry follow it.
    case advanceClock(SimDuration)
    /// `klist -li 0x3e7 purge` on a host.
    case purgeTickets(host: String)
    /// Restarts a host: sessions end, tickets are purged and a new TGT is obtained.
    case restartHost(host: String)

    // Moves
    case move(MoveRequest)
    /// Several moves started together (rule N2: beyond each host's limit they queue, then run).
    case moveMany([MoveRequest])
}

/// What a step did.
public struct StepResult: Sendable, Hashable, Codable {
    /// One line saying what changed (`Enabled live migration on TestServer01`).
    public var summary: String
    /// For moves: one outcome per move, in order.
    public var outcomes: [MoveOutcome]

    public init(summary: String, outcomes: [MoveOutcome] = []) {
        self.summary = summary
        self.outcomes = outcomes
    }
}
