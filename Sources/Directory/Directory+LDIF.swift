import Foundation
import WindowsStatus

extension Directory {
    /// Builds a directory from an LDIF export of one or more domains (`ldifde -f`, `ldapsearch -LLL`).
    ///
    /// Reads `domainDNS` (domains), `crossRef` (`nETBIOSName`, `dnsRoot`), `trustedDomain`
    /// (`trustPartner`, `trustDirection`), `computer` (DCs: SERVER_TRUST_ACCOUNT or
    /// `OU=Domain Controllers`), `user` and `group` (`member`, and `memberOf` on members) objects;
    /// other objects are skipped. Every DC of a domain starts with the same replica.
    /// Errors name the file, line and attribute; on error nothing is returned.
    public static func importLDIF(_ text: String, file: String = "<ldif>") throws(DirectoryError) -> Directory {
        try importLDIFWithNotes(text, file: file).directory
    }

    /// ``importLDIF(_:file:)``, also returning what was skipped: search references (`ref:`),
    /// objects the model does not read, accounts without `sAMAccountName` (contacts).
    public static func importLDIFWithNotes(_ text: String, file: String = "<ldif>") throws(DirectoryError) -> DirectoryImport {
        let document = try LDIF.read(text, file: file)
        var result = try importRecords(document.records, source: file)
        result.notes = document.notes + result.notes
        return result
    }

    /// Builds a directory from directory entries (DN + attributes) from any source — an LDIF file,
    /// or the entries of an LDAP search turned into ``LDIFRecord``s — exactly as ``importLDIF(_:file:)``
    /// does. `source` names the origin in errors and notes (a file, an LDAP URL); lines are the
    /// records' own (0 when they did not come from a file).
    public static func importRecords(_ records: [LDIFRecord], source: String) throws(DirectoryError) -> DirectoryImport {
        var importer = LDIFImporter(file: source)
        try importer.read(records)
        return DirectoryImport(directory: try importer.assemble(), notes: importer.notes)
    }

    /// Writes the directory as LDIF, each domain as its first DC holds it (replicate first to
    /// include changes written elsewhere). `importLDIF(exportLDIF())` gives the same objects,
    /// domains and trusts.
    public func exportLDIF() -> String {
        var records: [LDIFRecord] = []
        func rec(_ dn: String, _ attrs: [(String, String)]) {
            records.append(LDIFRecord(dn: dn, line: 0, values: attrs.map { LDIFRecord.Value(name: $0.0, value: $0.1, line: 0) }))
        }
        let rootDN = domainOrder.first.flatMap { domains[$0]?.domain.distinguishedName } ?? ""
        for dkey in domainOrder {
            guard let state = domains[dkey], let replica = state.replica() else { continue }
            let d = state.domain
            let dn = d.distinguishedName
            rec(dn, [("objectClass", "top"), ("objectClass", "domain"), ("objectClass", "domainDNS"),
                     ("dc", String(d.dnsName.split(separator: ".").first ?? "")), ("name", String(d.dnsName.split(separator: ".").first ?? ""))])
            rec("CN=\(DistinguishedName.escape(d.netBIOSName)),CN=Partitions,CN=Configuration,\(rootDN)",
                [("objectClass", "top"), ("objectClass", "crossRef"), ("cn", d.netBIOSName), ("nETBIOSName", d.netBIOSName),
                 ("dnsRoot", d.dnsName), ("nCName", dn), ("systemFlags", "3")])
            for t in trusts where t.domain == dkey {
                let partner = domains[t.partner]?.domain
                rec("CN=\(DistinguishedName.escape(partner?.dnsName ?? t.partner)),CN=System,\(dn)",
                    [("objectClass", "top"), ("objectClass", "leaf"), ("objectClass", "trustedDomain"),
                     ("cn", partner?.dnsName ?? t.partner), ("trustPartner", partner?.dnsName ?? t.partner),
                     ("flatName", partner?.netBIOSName ?? t.partner.uppercased()),
                     ("trustDirection", String(t.direction.rawValue)), ("trustType", "2"), ("trustAttributes", "0")])
            }
            // memberOf back-links, as AD computes them.
            var memberOf: [PrincipalRef: [String]] = [:]
            for (_, g) in replica.groups {
                for m in g.members { memberOf[m, default: []].append(g.distinguishedName) }
            }
            for state2 in domainOrder where state2 != dkey {
                guard let r2 = domains[state2]?.replica() else { continue }
                for (_, g) in r2.groups { for m in g.members where m.domain == dkey { memberOf[m, default: []].append(g.distinguishedName) } }
            }
            let backLinks = { (ref: PrincipalRef) -> [(String, String)] in
                (memberOf[ref] ?? []).sorted().map { ("memberOf", $0) }
            }
            for c in replica.computers.values.sorted(by: { $0.distinguishedName < $1.distinguishedName }) {
                var a: [(String, String)] = [("objectClass", "top"), ("objectClass", "person"), ("objectClass", "organizationalPerson"),
                                             ("objectClass", "user"), ("objectClass", "computer"), ("cn", c.shortName),
                                             ("sAMAccountName", c.samAccountName), ("userAccountControl", String(c.userAccountControl))]
                if let h = c.dnsHostName { a.append(("dNSHostName", h)) }
                if let os = c.operatingSystem { a.append(("operatingSystem", os)) }
                a += c.servicePrincipalNames.map { ("servicePrincipalName", $0) }
                a += c.allowedToDelegateTo.map { ("msDS-AllowedToDelegateTo", $0) }
                a += backLinks(PrincipalRef(domain: dkey, name: c.samAccountName))
                rec(c.distinguishedName, a)
            }
            for u in replica.users.values.sorted(by: { $0.distinguishedName < $1.distinguishedName }) {
                var a: [(String, String)] = [("objectClass", "top"), ("objectClass", "person"), ("objectClass", "organizationalPerson"),
                                             ("objectClass", "user"), ("cn", DistinguishedName(u.distinguishedName)?.name ?? u.samAccountName),
                                             ("sAMAccountName", u.samAccountName), ("userAccountControl", String(u.userAccountControl))]
                if let upn = u.userPrincipalName { a.append(("userPrincipalName", upn)) }
                a += backLinks(PrincipalRef(domain: dkey, name: u.samAccountName))
                rec(u.distinguishedName, a)
            }
            for g in replica.groups.values.sorted(by: { $0.distinguishedName < $1.distinguishedName }) {
                var a: [(String, String)] = [("objectClass", "top"), ("objectClass", "group"),
                                             ("cn", DistinguishedName(g.distinguishedName)?.name ?? g.samAccountName),
                                             ("sAMAccountName", g.samAccountName), ("groupType", "-2147483646")]
                a += g.members.map { memberDN($0) }.sorted().map { ("member", $0) }
                a += backLinks(PrincipalRef(domain: dkey, name: g.samAccountName))
                rec(g.distinguishedName, a)
            }
        }
        return LDIF.write(records, header: "Exported by MigrationAuth (simulated Active Directory)")
    }

    private func memberDN(_ ref: PrincipalRef) -> String {
        if let o = replica(of: ref.domain)?.object(key: ref.name) { return o.distinguishedName }
        let dn = domains[ref.domain]?.domain.distinguishedName ?? ""
        return "CN=\(DistinguishedName.escape(ref.name)),CN=Users,\(dn)"
    }

    /// Places objects on every DC of a domain at once, sharing one replica (fast bulk load).
    mutating func bulkLoad(_ objects: [DirectoryObject], in domain: String) throws(DirectoryError) {
        guard var state = domains[domain], let first = state.primaryController, var replica = state.controllers[first]?.replica else {
            throw DirectoryError(status: .noSuchDomain, message: "No domain \(domain)")
        }
        let stamp = ObjectStamp(version: 1, time: .zero, originDC: "")
        for o in objects {
            if case .computer(let c) = o {
                for spn in c.servicePrincipalNames {
                    if let owner = replica.spnIndex[spn.lowercased()], owner != o.key {
                        throw DirectoryError(status: .dsSPNNotUniqueInForest,
                                             message: "SPN \(spn) of \(c.samAccountName) is already registered to \(owner)",
                                             attribute: "servicePrincipalName")
                    }
                }
            }
            let s = replica.stamp(of: o).map { ObjectStamp(version: $0.version + 1, time: .zero, originDC: "") } ?? stamp
            replica.store(o, stamp: s)
        }
        for c in state.controllerOrder { state.controllers[c]?.replica = replica }
        domains[domain] = state
    }
}

extension Directory {
    /// Registers a DC without seeding its computer account (the LDIF supplies it).
    mutating func addControllerEmpty(_ name: String, to domain: String) throws(DirectoryError) {
        guard var state = domains[domain] else { throw DirectoryError(status: .noSuchDomain, message: "No domain \(domain)") }
        let key = name.lowercased()
        guard state.controllers[key] == nil else {
            throw DirectoryError(status: .dsObjectExists, message: "Domain controller \(name) appears twice")
        }
        state.controllers[key] = DomainController(name: name, domain: domain)
        state.controllerOrder.append(key)
        domains[domain] = state
        registerController(key, domain: domain)
    }
}
