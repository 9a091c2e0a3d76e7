import Directory

/// Rule P2: only members of Domain Admins of the account's domain may change a computer
/// account's delegation; anyone else gets ERROR_DS_INSUFF_ACCESS_RIGHTS (0x80072098) and nothing
/// changes. The check itself is the directory's (``Directory/setDelegation(of:domain:kind:services:by:on:at:)``);
/// this maps the world's delegation steps onto it.
enum P2ConfigureDelegation {
    enum Change {
        case add([String]), remove([String]), kind(DelegationKind)
    }

    static func apply(_ change: Change, computer: String, by actorName: String, dc: String?,
                      world: inout World) throws(SimulationError) -> String {
        let dir = world.directory
        guard let account = dir.computer(computer, on: dc) else {
            throw SimulationError(status: .dsNoSuchObject, message: "No computer account \(computer)")
        }
        let domain = DistinguishedName(account.distinguishedName)?.domainDNSName
            ?? dc.flatMap { dir.domainOfController($0) } ?? ""
        guard let actor = dir.resolve(actorName, defaultDomain: domain) else { throw SimulationError.unknownPrincipal(actorName) }
        let dcName = dc ?? dir.domain(domain)?.primaryController
        let now = world.now
        do {
            switch change {
            case .add(let services):
                try world.directory.addDelegationServices(services, to: computer, domain: domain, by: actor, on: dcName, at: now)
            case .remove(let services):
                try world.directory.removeDelegationServices(services, from: computer, domain: domain, by: actor, on: dcName, at: now)
            case .kind(let kind):
                try world.directory.setDelegation(of: computer, domain: domain, kind: kind, by: actor, on: dcName, at: now)
            }
        } catch {
            if error.rule == "P2" {
                throw SimulationError(status: error.status, rule: .p2,
                                      message: "\(error.message). Ask a member of Domain Admins of \(domain) to make the change.")
            }
            throw SimulationError(error)
        }
        let on = dcName.flatMap { world.directory.controller($0)?.name } ?? "?"
        switch change {
        case .add(let s): return "Added \(s.joined(separator: ", ")) to \(account.samAccountName) msDS-AllowedToDelegateTo on \(on)"
        case .remove(let s): return "Removed \(s.joined(separator: ", ")) from \(account.samAccountName) msDS-AllowedToDelegateTo on \(on)"
        case .kind(let k): return "Set delegation of \(account.samAccountName) to \(k.rawValue) on \(on)"
        }
    }
}
