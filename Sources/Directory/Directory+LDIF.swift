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
        try LDIFImporter(records: LDIF.parse(text, file: file), file: file).build()
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

/// Turns LDIF records into a directory.
struct LDIFImporter {
    let records: [LDIFRecord]
    let file: String

    func error(_ message: String, _ line: Int, _ attribute: String? = nil, status: WindowsStatus = .invalidArgument) -> DirectoryError {
        DirectoryError(status: status, message: message, file: file, line: line, attribute: attribute)
    }

    static func key(_ dn: String) -> String {
        // Only DNs with escapes or spaces around separators need parsing to compare.
        var previous: UInt8 = 0
        for u in dn.utf8 {
            if u == UInt8(ascii: "\\") || u == UInt8(ascii: "\"") || u == UInt8(ascii: "+") { return DistinguishedName.normalize(dn) }
            if u == UInt8(ascii: " ") && (previous == UInt8(ascii: ",") || previous == UInt8(ascii: "=")) { return DistinguishedName.normalize(dn) }
            if previous == UInt8(ascii: " ") && (u == UInt8(ascii: ",") || u == UInt8(ascii: "=")) { return DistinguishedName.normalize(dn) }
            previous = u
        }
        return ServiceTarget.asciiLower(dn)
    }

    private func classes(_ r: LDIFRecord) -> Set<String> { Set(r.all("objectClass").map { $0.value.lowercased() }) }

    private func uac(_ r: LDIFRecord) throws(DirectoryError) -> UInt32 {
        guard let v = r.first("userAccountControl") else { return 0 }
        if let u = UInt32(v.value) { return u }
        if let i = Int32(v.value) { return UInt32(bitPattern: i) }
        throw error("userAccountControl is not a number: '\(v.value)'", v.line, "userAccountControl")
    }

    private func domainOf(_ r: LDIFRecord) throws(DirectoryError) -> String {
        guard let dn = DistinguishedName(r.dn), let d = dn.domainDNSName else {
            throw error("DN has no DC= components: '\(r.dn)'", r.line, "dn")
        }
        return d.lowercased()
    }

    func build() throws(DirectoryError) -> Directory {
        var domainOrder: [String] = []
        var netbios: [String: String] = [:]
        var trusts: [(Trust, Int)] = []
        var objects: [String: [(DirectoryObject, LDIFRecord)]] = [:]
        var controllers: [String: [String]] = [:]
        var dnIndex: [String: PrincipalRef] = [:]
        var groupIndex: [String: (domain: String, position: Int)] = [:]

        func noteDomain(_ d: String) { if !domainOrder.contains(d) { domainOrder.append(d) } }

        for r in records {
            if r.dn.isEmpty { continue }
            let cls = classes(r)
            if cls.contains("domaindns") {
                noteDomain(try domainOf(r))
            } else if cls.contains("crossref") {
                if let nb = r.first("nETBIOSName")?.value, let root = r.first("dnsRoot")?.value {
                    netbios[root.lowercased()] = nb
                }
            } else if cls.contains("trusteddomain") {
                let d = try domainOf(r)
                guard let partner = r.first("trustPartner") else { throw error("trustedDomain without trustPartner", r.line, "trustPartner") }
                guard let dirValue = r.first("trustDirection") else { throw error("trustedDomain without trustDirection", r.line, "trustDirection") }
                guard let raw = Int(dirValue.value), let direction = TrustDirection(rawValue: raw) else {
                    throw error("trustDirection must be 1, 2 or 3, not '\(dirValue.value)'", dirValue.line, "trustDirection")
                }
                trusts.append((Trust(domain: d, partner: partner.value, direction: direction), r.line))
            } else if cls.contains("computer") {
                let d = try domainOf(r)
                noteDomain(d)
                guard let sam = r.first("sAMAccountName")?.value else { throw error("computer without sAMAccountName", r.line, "sAMAccountName") }
                let bits = try uac(r)
                let u = UserAccountControl(rawValue: bits)
                let dn = DistinguishedName(r.dn)
                let isDC = u.contains(.serverTrustAccount) || (dn?.contains(container: "Domain Controllers") ?? false)
                let delegateTo = r.all("msDS-AllowedToDelegateTo").map(\.value)
                let kind: DelegationKind
                if u.contains(.trustedForDelegation) && !isDC { kind = .unconstrained }
                else if u.contains(.trustedToAuthForDelegation) { kind = .constrainedAnyProtocol }
                else if !delegateTo.isEmpty { kind = .constrainedKerberosOnly }
                else { kind = .none }
                let other = u.subtracting(UserAccountControl.modelled).rawValue
                let c = ComputerAccount(samAccountName: sam, distinguishedName: r.dn, dnsHostName: r.first("dNSHostName")?.value,
                                        servicePrincipalNames: r.all("servicePrincipalName").map(\.value), delegation: isDC ? .none : kind,
                                        allowedToDelegateTo: delegateTo, disabled: u.contains(.accountDisable), isDomainController: isDC,
                                        operatingSystem: r.first("operatingSystem")?.value, otherAccountControl: other)
                if isDC { controllers[d, default: []].append(c.shortName) }
                let ref = PrincipalRef(domain: d, name: c.samAccountName)
                dnIndex[LDIFImporter.key(r.dn)] = ref
                objects[d, default: []].append((.computer(c), r))
            } else if cls.contains("user") || cls.contains("person") || cls.contains("inetorgperson") {
                let d = try domainOf(r)
                noteDomain(d)
                guard let sam = r.first("sAMAccountName")?.value else { throw error("user without sAMAccountName", r.line, "sAMAccountName") }
                let u = UserAccountControl(rawValue: try uac(r))
                let user = UserAccount(samAccountName: sam, distinguishedName: r.dn, userPrincipalName: r.first("userPrincipalName")?.value,
                                       sensitive: u.contains(.notDelegated), disabled: u.contains(.accountDisable),
                                       otherAccountControl: u.subtracting(UserAccountControl.modelled).rawValue)
                dnIndex[LDIFImporter.key(r.dn)] = PrincipalRef(domain: d, name: sam)
                objects[d, default: []].append((.user(user), r))
            } else if cls.contains("group") {
                let d = try domainOf(r)
                noteDomain(d)
                guard let sam = r.first("sAMAccountName")?.value else { throw error("group without sAMAccountName", r.line, "sAMAccountName") }
                let g = Group(samAccountName: sam, distinguishedName: r.dn)
                let k = LDIFImporter.key(r.dn)
                dnIndex[k] = PrincipalRef(domain: d, name: sam)
                groupIndex[k] = (d, objects[d, default: []].count)
                objects[d, default: []].append((.group(g), r))
            }
        }

        // Membership: `member` on groups, `memberOf` on members.
        func resolve(_ dn: String, _ v: LDIFRecord.Value) throws(DirectoryError) -> PrincipalRef? {
            if let ref = dnIndex[LDIFImporter.key(dn)] { return ref }
            if dn.lowercased().contains("cn=foreignsecurityprincipals") { return nil }
            throw error("\(v.name) names an object that is not in the file: '\(dn)'", v.line, v.name, status: .dsNoSuchObject)
        }
        for d in domainOrder {
            guard let list = objects[d] else { continue }
            for (object, r) in list {
                if case .group = object, let pos = groupIndex[LDIFImporter.key(r.dn)]?.position {
                    for v in r.all("member") {
                        guard let m = try resolve(v.value, v), case .group(var g)? = objects[d]?[pos].0 else { continue }
                        g.members.insert(m)
                        objects[d]?[pos].0 = .group(g)
                    }
                }
                for v in r.all("memberOf") {
                    guard let gi = groupIndex[LDIFImporter.key(v.value)],
                          case .group(var g)? = objects[gi.domain]?[gi.position].0 else {
                        if v.value.lowercased().contains("cn=builtin") { continue }
                        throw error("memberOf names a group that is not in the file: '\(v.value)'", v.line, "memberOf", status: .dsNoSuchObject)
                    }
                    guard let me = dnIndex[LDIFImporter.key(r.dn)] else { continue }
                    g.members.insert(me)
                    objects[gi.domain]?[gi.position].0 = .group(g)
                }
            }
        }

        // SPNs must be unique in the whole forest (checked first, to name the line).
        var seen: [String: String] = [:]
        for d in domainOrder {
            for (object, r) in objects[d] ?? [] {
                guard case .computer(let c) = object else { continue }
                for v in r.all("servicePrincipalName") {
                    let k = v.value.lowercased()
                    if let other = seen[k], other != "\(d)\\\(c.samAccountName)" {
                        throw error("SPN '\(v.value)' is not unique in the forest (also on \(other))", v.line, "servicePrincipalName", status: .dsSPNNotUniqueInForest)
                    }
                    seen[k] = "\(d)\\\(c.samAccountName)"
                }
            }
        }
        var dir = Directory()
        for d in domainOrder {
            let domain = Domain(dnsName: d, netBIOSName: netbios[d])
            let dcs = controllers[d] ?? []
            guard !dcs.isEmpty else {
                let line = objects[d]?.first?.1.line ?? 1
                throw error("Domain \(d) has no domain controller (a computer with SERVER_TRUST_ACCOUNT in OU=Domain Controllers)", line, "userAccountControl")
            }
            do {
                try dir.addDomain(domain, controllers: [])
                for dc in dcs { try dir.addControllerEmpty(dc, to: d) }
                try dir.bulkLoad((objects[d] ?? []).map(\.0), in: d)
            } catch {
                var e = error
                if e.file == nil { e.file = file }
                throw e
            }
        }
        for (t, line) in trusts {
            do { try dir.addTrust(t) } catch {
                throw self.error("trustedDomain names a domain that is not in the file: \(t.partner)", line, "trustPartner", status: .noSuchDomain)
            }
        }
        return dir
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
