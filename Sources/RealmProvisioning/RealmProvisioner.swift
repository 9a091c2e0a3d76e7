import Foundation
import MigrationRules
import TestRealm

/// Keeps a running LDAP-backed ``TestRealm`` in step with a simulated ``World``.
///
/// ``provision(_:)`` computes ``RealmModel/desired(for:)`` and applies only the difference from
/// what it applied last: new principals are created (users with generated passwords kept here),
/// changed flags are modified, removed principals deleted, and changed delegation lists written
/// to `krbAllowedToDelegateTo`. Provisioning the same world twice changes nothing.
package actor RealmProvisioner {
    package nonisolated let realm: TestRealm
    /// What the KDC holds now (as far as this provisioner wrote it).
    package private(set) var applied: RealmModel
    private var passwords: [String: String] = [:]

    /// The domain whose accounts this realm holds (nil: the world's first).
    package nonisolated let domain: String?
    /// The domain's other controllers (their own slapd and KDC): flag changes are made on each too;
    /// delegation lists are not — they reach a replica by replication (``writesDelegation``).
    private var replicas: [RealmReplica] = []
    /// False once the domain has replicas: delegation changes are then written on the DC the
    /// scenario names and replicate from there (the runner does both), not by this provisioner.
    package private(set) var writesDelegation = true

    package init(realm: TestRealm, domain: String? = nil) {
        self.realm = realm
        self.domain = domain
        self.applied = RealmModel(realm: realm.name, domains: realm.configuration.domains)
    }

    /// Starts an LDAP-backed realm named after `domain` (default: the world's first domain);
    /// `replicated`: ready for ``RealmReplica``s (more domain controllers).
    package static func startRealm(for world: World, domain: String? = nil, parentDirectory: String? = nil,
                                   replicated: Bool = false) async throws -> TestRealm {
        let desired = RealmModel.desired(for: world, domain: domain)
        var configuration = TestRealm.Configuration(name: desired.realm, backend: .ldap, domains: desired.domains,
                                                    parentDirectory: parentDirectory)
        configuration.replicated = replicated
        return try await TestRealm.start(configuration)
    }

    /// The domain's other DCs, started from this realm's directory after the first ``provision(_:)``.
    package func adopt(replicas: [RealmReplica]) {
        self.replicas = replicas
        writesDelegation = replicas.isEmpty
    }

    /// The password generated for a user principal (nil before it was provisioned).
    package func password(of user: String) -> String? { passwords[user] }

    /// Applies the difference between the world's desired state and the applied one.
    @discardableResult
    package func provision(_ world: World) async throws -> [ProvisioningChange] {
        var desired = RealmModel.desired(for: world, domain: domain)
        guard desired.realm == realm.name else {
            throw TestRealmError.invalidArgument("world's realm \(desired.realm) is not the running realm \(realm.name)")
        }
        desired.domains = applied.domains
        var changes: [ProvisioningChange] = []
        for name in desired.principals.keys.sorted() {
            guard let want = desired.principals[name] else { continue }
            if let have = applied.principals[name] {
                guard have != want else { continue }
                try await realm.modifyPrincipal(name, attributes: Self.attributes(want))
                for r in replicas { try await r.modifyPrincipal(name, attributes: Self.attributes(want)) }
                applied.principals[name] = want
                changes.append(.modified(name, Self.flags(want)))
            } else {
                var password: String? = nil
                if want.kind == .user {
                    let p = Self.generatePassword()
                    passwords[name] = p
                    password = p
                }
                try await realm.addPrincipal(name, password: password, attributes: Self.attributes(want))
                applied.principals[name] = want
                changes.append(.added(name, Self.flags(want)))
            }
        }
        for name in applied.principals.keys.sorted() where desired.principals[name] == nil {
            try await realm.deletePrincipal(name)
            applied.principals[name] = nil
            applied.delegation[name] = nil
            passwords[name] = nil
            changes.append(.deleted(name))
        }
        for name in Set(desired.delegation.keys).union(applied.delegation.keys).sorted() where writesDelegation {
            let want = desired.delegation[name] ?? []
            guard want != applied.delegation[name] ?? [], applied.principals[name] != nil else { continue }
            try await realm.setAllowedToDelegate(name, targets: want)
            applied.delegation[name] = want.isEmpty ? nil : want
            changes.append(.delegation(name, want))
        }
        return changes
    }

    static func attributes(_ p: RealmModel.Principal) -> PrincipalAttributes {
        PrincipalAttributes(forwardable: p.forwardable, okToAuthAsDelegate: p.okToAuthAsDelegate)
    }

    static func flags(_ p: RealmModel.Principal) -> String {
        (p.forwardable ? "+" : "-") + "allow_forwardable " + (p.okToAuthAsDelegate ? "+" : "-") + "ok_to_auth_as_delegate"
    }

    static func generatePassword() -> String {
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        return "Mig-" + String((0..<20).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] })
    }
}

/// One change provisioning made to the real KDC.
package enum ProvisioningChange: Sendable, Hashable, CustomStringConvertible {
    case added(String, String)
    case modified(String, String)
    case deleted(String)
    /// New `krbAllowedToDelegateTo` values (empty: attribute removed).
    case delegation(String, [String])

    package var description: String {
        switch self {
        case let .added(p, f): "addprinc \(f) \(p)"
        case let .modified(p, f): "modprinc \(f) \(p)"
        case let .deleted(p): "delprinc \(p)"
        case let .delegation(p, t): "krbAllowedToDelegateTo of \(p): " + (t.isEmpty ? "(none)" : t.joined(separator: ", "))
        }
    }
}
