/// A computer account (`TESTSERVER01$`) as AD stores it.
public struct ComputerAccount: Sendable, Hashable, Codable {
    /// `TestServer01$` (always with the trailing `$`).
    public var samAccountName: String
    public var distinguishedName: String
    /// `TestServer01.contoso.com`.
    public var dnsHostName: String?
    /// `servicePrincipalName` values, unique across the forest.
    public var servicePrincipalNames: [String]
    public var delegation: DelegationKind
    /// `msDS-AllowedToDelegateTo` values, in order, e.g.
    /// `Microsoft Virtual System Migration Service/TestServer02.contoso.com`.
    public var allowedToDelegateTo: [String]
    public var disabled: Bool
    /// A domain controller (SERVER_TRUST_ACCOUNT) rather than a member (WORKSTATION_TRUST_ACCOUNT).
    public var isDomainController: Bool
    /// `operatingSystem`, e.g. `Windows Server 2012 R2 Datacenter`.
    public var operatingSystem: String?
    /// `userAccountControl` bits not modelled above, kept for a faithful round trip.
    public var otherAccountControl: UInt32

    public init(samAccountName: String, distinguishedName: String, dnsHostName: String? = nil,
                servicePrincipalNames: [String] = [], delegation: DelegationKind = .none,
                allowedToDelegateTo: [String] = [], disabled: Bool = false, isDomainController: Bool = false,
                operatingSystem: String? = nil, otherAccountControl: UInt32 = 0) {
        self.samAccountName = samAccountName.hasSuffix("$") ? samAccountName : samAccountName + "$"
        self.distinguishedName = distinguishedName
        self.dnsHostName = dnsHostName
        self.servicePrincipalNames = servicePrincipalNames
        self.delegation = delegation
        self.allowedToDelegateTo = allowedToDelegateTo
        self.disabled = disabled
        self.isDomainController = isDomainController
        self.operatingSystem = operatingSystem
        self.otherAccountControl = otherAccountControl
    }

    /// A member server or workstation `name` in `domain` with the usual SPNs
    /// (`HOST/name`, `HOST/fqdn`, `RestrictedKrbHost/…`) and, when `hyperV`, the migration service SPNs.
    public static func standard(name: String, domain: Domain, hyperV: Bool = true,
                                isDomainController: Bool = false, operatingSystem: String? = nil) -> ComputerAccount {
        let fqdn = "\(name).\(domain.dnsName)"
        var spns = ["HOST/\(name)", "HOST/\(fqdn)", "RestrictedKrbHost/\(name)", "RestrictedKrbHost/\(fqdn)"]
        if hyperV {
            spns += ["\(ServiceClass.migrationServiceName)/\(name)", "\(ServiceClass.migrationServiceName)/\(fqdn)"]
        }
        let container = isDomainController ? "OU=Domain Controllers" : "CN=Computers"
        return ComputerAccount(samAccountName: name + "$",
                               distinguishedName: "CN=\(DistinguishedName.escape(name)),\(container),\(domain.distinguishedName)",
                               dnsHostName: fqdn, servicePrincipalNames: spns,
                               isDomainController: isDomainController, operatingSystem: operatingSystem)
    }

    /// The lower-cased name without `$`: the key hosts and the directory share.
    public var key: String { ServiceTarget.shortKey(samAccountName) }

    /// The name without `$`, as typed (`TestServer01`).
    public var shortName: String { String(samAccountName.dropLast(samAccountName.hasSuffix("$") ? 1 : 0)) }

    /// The delegation setting as a ticket would carry it.
    public var delegationSnapshot: DelegationSnapshot {
        DelegationSnapshot(kind: delegation, targets: Set(allowedToDelegateTo.compactMap(ServiceTarget.init(spn:))))
    }

    /// `userAccountControl` as AD would store it.
    public var userAccountControl: UInt32 {
        var uac = UserAccountControl(rawValue: otherAccountControl)
        uac.insert(isDomainController ? .serverTrustAccount : .workstationTrustAccount)
        if disabled { uac.insert(.accountDisable) }
        if delegation == .unconstrained || isDomainController { uac.insert(.trustedForDelegation) }
        if delegation == .constrainedAnyProtocol { uac.insert(.trustedToAuthForDelegation) }
        return uac.rawValue
    }
}
