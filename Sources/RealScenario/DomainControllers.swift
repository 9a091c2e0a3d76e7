import Directory
import Foundation
import MigrationRules
import RealmProvisioning
import Scenario
import TestRealm

/// The domain controllers of one domain that has several in the model: the domain's realm is its
/// first DC (its slapd and KDC), and every other DC is a ``RealmReplica`` — its own `slapd` holding
/// a syncrepl replica and its own `krb5kdc` reading only that slapd, on its own loopback address.
///
/// Delegation (`krbAllowedToDelegateTo`) is where rule A3 lives, so it moves as AD moves it: a
/// change is written on the DC the step names, and reaches another DC only by real replication —
/// when the model says a DC received it (`replicate`, or a link delay running out), that DC pulls
/// from one that holds it (an OpenLDAP syncrepl refresh), and the runner then checks that the
/// DC's directory holds what the model says. Before that, the other DC's KDC answers from its own
/// directory (MIT's LDAP KDB keeps no cache). Account flags are written on every DC.
actor DomainControllers {
    let domain: String
    /// The realm: the domain's first DC.
    let realm: TestRealm
    /// Lower-cased key of the DC the realm stands for.
    let primary: String
    /// The other DCs, by lower-cased key.
    private let replicas: [String: RealmReplica]
    /// DC keys in the model's order.
    let order: [String]

    private init(domain: String, realm: TestRealm, primary: String, replicas: [String: RealmReplica], order: [String]) {
        self.domain = domain
        self.realm = realm
        self.primary = primary
        self.replicas = replicas
        self.order = order
    }

    /// Starts a replica for every DC of `domain` after its first, from the realm's directory as
    /// provisioned; `firstAddress`: the loopback address index of the first replica (127.0.3.x).
    static func start(domain: String, world: World, realm: TestRealm, addressIndex: inout Int) async throws -> DomainControllers? {
        guard let state = world.directory.domain(domain), state.controllerOrder.count > 1,
              let primary = state.primaryController else { return nil }
        var replicas: [String: RealmReplica] = [:]
        do {
            for (i, key) in state.controllerOrder.dropFirst().enumerated() {
                let name = state.controllers[key]?.name ?? key
                addressIndex += 1
                replicas[key] = try await RealmReplica.start(of: realm, name: name, address: "127.0.3.\(addressIndex)",
                                                             serverID: i + 2)
            }
        } catch {
            for r in replicas.values { await r.shutdown() }
            throw error
        }
        return DomainControllers(domain: domain, realm: realm, primary: primary, replicas: replicas,
                                 order: state.controllerOrder)
    }

    var allReplicas: [RealmReplica] { order.compactMap { replicas[$0] } }

    /// `address:port` of the KDC of `dc` (a DC key or name), or nil for the realm's own.
    func kdc(of dc: String) -> String? {
        replicas[dc.lowercased()].map { "\($0.address):\($0.kdcPort)" }
    }

    func shutdown() async {
        for r in replicas.values { await r.shutdown() }
    }

    /// What each DC's directory must hold: delegating host principal → sorted qualified targets.
    static func modelDelegation(_ world: World, domain: String, dc: String) -> [String: [String]] {
        RealmModel.desired(for: world, domain: domain, dc: dc).delegation
    }

    /// The delegation lists `dc`'s directory holds now, for the principals in `names`.
    func realDelegation(on dc: String, names: [String]) async throws -> [String: [String]] {
        var out: [String: [String]] = [:]
        for name in names {
            let values: [String]
            if let r = replicas[dc] { values = try await r.allowedToDelegate(name) } else { values = try await realm.allowedToDelegate(name) }
            if !values.isEmpty { out[name] = values.sorted() }
        }
        return out
    }

    private func write(_ name: String, _ targets: [String], on dc: String) async throws {
        if let r = replicas[dc] { try await r.setAllowedToDelegate(name, targets: targets) } else {
            try await realm.setAllowedToDelegate(name, targets: targets)
        }
    }

    private func pull(_ dc: String, from provider: String) async throws {
        switch (replicas[dc], replicas[provider]) {
        case let (r?, p?): try await r.pull(from: p)
        case let (r?, nil): try await r.pull(from: realm)
        case let (nil, p?): try await realm.pullDirectory(from: p)
        case (nil, nil): break
        }
    }

    /// Brings the DCs' directories in line with the model after a step. `written`: the DC a
    /// delegation step wrote on (its new lists are written there directly); `initial`: set-up,
    /// every DC gets the model's lists directly. Any other DC whose lists differ from the model's
    /// pulls from a DC that holds them (real replication) and must then hold them; otherwise this
    /// throws, naming the DC, what it holds and what the model says. Returns the pulls made.
    @discardableResult
    func sync(_ world: World, written: String? = nil, initial: Bool = false) async throws -> [String] {
        let principals = Set(order.flatMap { Self.modelDelegation(world, domain: domain, dc: $0).keys })
        let names = Set(world.allHosts.filter { $0.domain == domain }.map { PrincipalNames.host(fqdn: PrincipalNames.fqdn($0)) })
            .union(principals).sorted()
        var model: [String: [String: [String]]] = [:]
        var real: [String: [String: [String]]] = [:]
        for dc in order {
            model[dc] = Self.modelDelegation(world, domain: domain, dc: dc)
            real[dc] = try await realDelegation(on: dc, names: names)
        }
        for dc in order where initial || dc == written?.lowercased() {
            for name in names where (model[dc]?[name] ?? []) != (real[dc]?[name] ?? []) {
                try await write(name, model[dc]?[name] ?? [], on: dc)
            }
            real[dc] = model[dc]
        }
        var pulls: [String] = []
        for dc in order where real[dc] != model[dc] {
            guard let provider = order.first(where: { $0 != dc && real[$0] == model[dc] }) else {
                throw TestRealmError.invalidArgument("replication to \(dc.uppercased()): no DC holds what the model says it has "
                                                     + "(\(Self.describe(model[dc] ?? [:])))")
            }
            try await pull(dc, from: provider)
            pulls.append("\(provider.uppercased()) → \(dc.uppercased())")
            let now = try await realDelegation(on: dc, names: names)
            guard now == model[dc] else {
                throw TestRealmError.invalidArgument("replication \(provider.uppercased()) → \(dc.uppercased()): the directory holds "
                                                     + "\(Self.describe(now)), the model says \(Self.describe(model[dc] ?? [:]))")
            }
            real[dc] = now
        }
        return pulls
    }

    static func describe(_ lists: [String: [String]]) -> String {
        lists.isEmpty ? "no delegation" : lists.keys.sorted().map { "\($0) → \(lists[$0]?.joined(separator: ", ") ?? "")" }.joined(separator: "; ")
    }
}
