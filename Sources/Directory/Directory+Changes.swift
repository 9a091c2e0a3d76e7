import WindowsStatus

/// The writes scenarios make: delegation (rule P2), group membership, account flags.
extension Directory {
    /// Changes a computer account's delegation on `dc` as `actor` would through ADUC or `Set-ADComputer`.
    ///
    /// Rule P2: only members of Domain Admins of the account's domain (as `dc` sees them) may;
    /// anyone else gets ``WindowsStatus/dsInsufficientAccessRights`` and nothing changes.
    /// `services` replaces `msDS-AllowedToDelegateTo` when given; `kind` replaces the setting when given.
    public mutating func setDelegation(of computer: String, domain: String? = nil, kind: DelegationKind?,
                                       services: [String]? = nil, by actor: PrincipalRef,
                                       on dc: String? = nil, at time: SimTime) throws(DirectoryError) {
        try modifyComputer(computer, domain: domain, by: actor, on: dc, at: time) { c in
            if let kind { c.delegation = kind }
            if let services { c.allowedToDelegateTo = Directory.dedupe(services) }
        }
    }

    /// Adds `msDS-AllowedToDelegateTo` values (`Set-ADComputer -Add`). A computer with no constrained
    /// setting becomes "Kerberos only", as ADUC does when services are added.
    public mutating func addDelegationServices(_ services: [String], to computer: String, domain: String? = nil,
                                               by actor: PrincipalRef, on dc: String? = nil,
                                               at time: SimTime) throws(DirectoryError) {
        try modifyComputer(computer, domain: domain, by: actor, on: dc, at: time) { c in
            c.allowedToDelegateTo = Directory.dedupe(c.allowedToDelegateTo + services)
            if !c.delegation.isConstrained { c.delegation = .constrainedKerberosOnly }
        }
    }

    /// Removes `msDS-AllowedToDelegateTo` values (`Set-ADComputer -Remove`), matched case-insensitively.
    public mutating func removeDelegationServices(_ services: [String], from computer: String, domain: String? = nil,
                                                  by actor: PrincipalRef, on dc: String? = nil,
                                                  at time: SimTime) throws(DirectoryError) {
        let drop = Set(services.map { $0.lowercased() })
        try modifyComputer(computer, domain: domain, by: actor, on: dc, at: time) { c in
            c.allowedToDelegateTo.removeAll { drop.contains($0.lowercased()) }
        }
    }

    private mutating func modifyComputer(_ name: String, domain: String?, by actor: PrincipalRef, on dc: String?,
                                         at time: SimTime, _ change: (inout ComputerAccount) -> Void) throws(DirectoryError) {
        let dcDomain = dc.flatMap { domainOfController($0) }
        guard var account = computer(name, domain: domain ?? dcDomain, on: dc) else {
            throw DirectoryError(status: .dsNoSuchObject, message: "No computer account \(name)")
        }
        guard let dkey = domainKey(domain ?? dcDomain ?? DistinguishedName(account.distinguishedName)?.domainDNSName ?? "") else {
            throw DirectoryError(status: .noSuchDomain, message: "No domain for \(name)")
        }
        if let dcDomain, dcDomain != dkey {
            throw DirectoryError(status: .dsNoSuchObject, message: "\(dc ?? "") is not a domain controller of \(dkey)")
        }
        guard isDomainAdmin(actor, of: dkey, on: dc) else {
            throw DirectoryError(status: .dsInsufficientAccessRights, rule: "P2",
                                 message: "\(display(actor)) is not a member of Domain Admins of \(dkey), so it may not change the delegation of \(account.samAccountName)",
                                 attribute: "msDS-AllowedToDelegateTo")
        }
        change(&account)
        try write(.computer(account), in: dkey, on: dc, at: time)
    }

    /// Adds `member` to `group` (written on `dc`).
    public mutating func addMember(_ member: PrincipalRef, to group: PrincipalRef, on dc: String? = nil,
                                   at time: SimTime) throws(DirectoryError) {
        guard var g = self.group(group, on: dc) else {
            throw DirectoryError(status: .dsNoSuchObject, message: "No group \(group)")
        }
        guard replica(of: member.domain, on: dc)?.object(key: member.name) != nil else {
            throw DirectoryError(status: .dsNoSuchObject, message: "No account \(member)")
        }
        g.members.insert(member)
        try write(.group(g), in: group.domain, on: dc, at: time)
    }

    /// Removes `member` from `group` (written on `dc`).
    public mutating func removeMember(_ member: PrincipalRef, from group: PrincipalRef, on dc: String? = nil,
                                      at time: SimTime) throws(DirectoryError) {
        guard var g = self.group(group, on: dc) else {
            throw DirectoryError(status: .dsNoSuchObject, message: "No group \(group)")
        }
        g.members.remove(member)
        try write(.group(g), in: group.domain, on: dc, at: time)
    }

    /// Marks a user "sensitive and cannot be delegated" (NOT_DELEGATED) or clears it.
    public mutating func setSensitive(_ user: PrincipalRef, _ sensitive: Bool, on dc: String? = nil,
                                      at time: SimTime) throws(DirectoryError) {
        guard var u = self.user(user, on: dc) else {
            throw DirectoryError(status: .dsNoSuchObject, message: "No user \(user)")
        }
        u.sensitive = sensitive
        try write(.user(u), in: user.domain, on: dc, at: time)
    }

    /// Enables or disables a user account.
    public mutating func setDisabled(_ user: PrincipalRef, _ disabled: Bool, on dc: String? = nil,
                                     at time: SimTime) throws(DirectoryError) {
        guard var u = self.user(user, on: dc) else {
            throw DirectoryError(status: .dsNoSuchObject, message: "No user \(user)")
        }
        u.disabled = disabled
        try write(.user(u), in: user.domain, on: dc, at: time)
    }

    static func dedupe(_ values: [String]) -> [String] {
        var seen: Set<String> = []
        return values.filter { seen.insert($0.lowercased()).inserted }
    }
}

extension Directory {
    /// `CONTOSO\alice`: the NetBIOS domain name and the account's own spelling, as Windows shows it.
    public func display(_ ref: PrincipalRef) -> String {
        let domain = domains[ref.domain]?.domain.netBIOSName ?? ref.domain
        let name = user(ref)?.samAccountName ?? group(ref)?.samAccountName ?? computer(ref.name, domain: ref.domain)?.samAccountName ?? ref.name
        return "\(domain)\\\(name)"
    }
}
