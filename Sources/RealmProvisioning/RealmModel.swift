import Directory
import Hosts
import MigrationRules

/// What a real MIT KDC must hold for a simulated world: principals with their flags and each
/// delegating service's `krbAllowedToDelegateTo`. Computed from the world; applied by
/// ``RealmProvisioner`` as a diff.
///
/// What the KDC holds is what the domain controller it stands for holds: delegation lists and
/// "any protocol" as the model's replica on that DC has them (``desired(for:domain:dc:)``; by
/// default the domain's first DC). Rule A3's two halves are then real: a change written on another
/// DC reaches this one only by real replication (``RealScenario``'s domain controllers, OpenLDAP
/// syncrepl), and the source's daemon keeps the KDC's answer for as long as its own ticket lasts
/// (`HostTicketDelegation` in MigrationService). Users are read from the replica of the logon DC
/// of the first Hyper-V host of their domain (the DC a source host asks), else from the domain's
/// first DC.
package struct RealmModel: Sendable, Hashable {
    /// One principal and the flags provisioning manages.
    package struct Principal: Sendable, Hashable {
        package enum Kind: String, Sendable, Hashable { case user, host, service }
        package var name: String
        package var kind: Kind
        /// False for users who cannot be delegated (sensitive, Protected Users): `-allow_forwardable`.
        package var forwardable: Bool
        /// "Use any authentication protocol" (TRUSTED_TO_AUTH_FOR_DELEGATION): `+ok_to_auth_as_delegate`.
        package var okToAuthAsDelegate: Bool
    }

    /// The realm: the world's first domain, upper-cased (`CONTOSO.COM`).
    package var realm: String
    /// DNS domains mapped to the realm (`contoso.com`).
    package var domains: [String]
    /// Principals by name without realm (`alice`, `host/testserver01.contoso.com`).
    package var principals: [String: Principal]
    /// Delegating principal → sorted `krbAllowedToDelegateTo` values (qualified with the realm).
    package var delegation: [String: [String]]

    package init(realm: String, domains: [String], principals: [String: Principal] = [:],
                delegation: [String: [String]] = [:]) {
        self.realm = realm
        self.domains = domains
        self.principals = principals
        self.delegation = delegation
    }

    /// The realm name for a world: its first domain upper-cased (`CONTOSO.COM`).
    package static func realmName(of world: World) -> String {
        (world.directory.domainOrder.first ?? "migration.test").uppercased()
    }

    /// The realm of a domain: its DNS name upper-cased (`FABRIKAM.COM`).
    package static func realmName(ofDomain domain: String) -> String { domain.uppercased() }

    /// The state the KDC of `domain` (default: the world's first domain) must hold for `world`:
    /// that domain's accounts; its hosts' delegation lists may name services of other realms
    /// (qualified with theirs), which MIT applies within one realm only (rule A5).
    /// `dc`: the domain controller whose directory the KDC serves (nil: the domain's first).
    package static func desired(for world: World, domain: String? = nil, dc: String? = nil) -> RealmModel {
        let dir = world.directory
        let domain = domain ?? dir.domainOrder.first ?? ""
        var model = RealmModel(realm: domain.isEmpty ? realmName(of: world) : realmName(ofDomain: domain),
                               domains: [domain].filter { !$0.isEmpty })
        let hosts = world.allHosts.filter { $0.domain == domain }

        // Users, as the DC a source host asks sees them.
        let userDC = hosts.first(where: \.hypervisorInstalled)?.logonDC ?? dir.domain(domain)?.primaryController
        if let replica = dir.replica(of: domain, on: userDC) {
            for user in replica.users.values where !user.disabled {
                let ref = PrincipalRef(normalizedDomain: domain, name: user.key)
                let name = PrincipalNames.user(user)
                model.principals[name] = Principal(name: name, kind: .user,
                                                   forwardable: !dir.cannotBeDelegated(ref, on: userDC),
                                                   okToAuthAsDelegate: false)
            }
        }

        // Hosts: host/, the migration service and cifs, and the delegation in effect for each.
        for host in hosts {
            let fqdn = PrincipalNames.fqdn(host)
            let effective = dir.replica(of: domain, on: dc)?.computers[host.key]?.delegationSnapshot ?? .none
            let hostName = PrincipalNames.host(fqdn: fqdn)
            model.principals[hostName] = Principal(name: hostName, kind: .host, forwardable: true,
                                                   okToAuthAsDelegate: effective.kind == .constrainedAnyProtocol)
            for cls in [ServiceClass.migration, .cifs] {
                let name = PrincipalNames.service(cls, fqdn: fqdn)
                model.principals[name] = Principal(name: name, kind: .service, forwardable: true, okToAuthAsDelegate: false)
            }
            let targets = delegationTargets(effective, world: world, hosts: world.allHosts)
            if !targets.isEmpty {
                model.delegation[hostName] = targets.map { "\($0.principal)@\(realmName(ofDomain: $0.domain))" }.sorted()
            }
        }
        return model
    }

    /// The real principals a snapshot lets a host delegate to. Unconstrained delegation (a
    /// forwarded TGT on Windows) is approximated by listing every host's services.
    static func delegationTargets(_ snapshot: DelegationSnapshot, world: World, hosts: [SimulatedHost]) -> [(principal: String, domain: String)] {
        var out: [(String, String)] = []
        for host in hosts {
            let fqdn = PrincipalNames.fqdn(host)
            for cls in [ServiceClass.migration, .cifs, .host]
            where snapshot.allows(ServiceTarget(serviceClass: cls, key: host.key)) {
                out.append((PrincipalNames.service(cls, fqdn: fqdn), host.domain))
            }
        }
        return out
    }
}

/// How simulated accounts are named in the real realm.
package enum PrincipalNames {
    /// A user's principal (without realm): its sAMAccountName as written.
    package static func user(_ account: UserAccount) -> String { account.samAccountName }

    /// A host's lower-cased FQDN (`testserver01.contoso.com`).
    package static func fqdn(_ host: SimulatedHost) -> String { host.fqdn.lowercased() }

    /// `host/<fqdn>`.
    package static func host(fqdn: String) -> String { service(.host, fqdn: fqdn) }

    /// `<service class>/<fqdn>`: `Microsoft Virtual System Migration Service/…`, `cifs/…`, `host/…`.
    package static func service(_ cls: ServiceClass, fqdn: String) -> String {
        switch cls {
        case .host: "host/\(fqdn)"
        case .cifs: "cifs/\(fqdn)"
        default: "\(cls.name)/\(fqdn)"
        }
    }
}
