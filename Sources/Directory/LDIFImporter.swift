import Foundation
import WindowsStatus

/// A directory built from entries, and what the import skipped.
public struct DirectoryImport: Sendable {
    public var directory: Directory
    public var notes: [LDIFNote]

    public init(directory: Directory, notes: [LDIFNote]) {
        self.directory = directory
        self.notes = notes
    }
}

/// Turns directory entries (``LDIFRecord``s) into a ``Directory``: first every record is read
/// into domains, trusts and accounts, then memberships are linked, SPNs checked and the
/// domains assembled.
struct LDIFImporter {
    let file: String
    private(set) var notes: [LDIFNote] = []
    private var domainOrder: [String] = []
    private var netbios: [String: String] = [:]
    private var trusts: [(Trust, Int)] = []
    private var objects: [String: [(DirectoryObject, LDIFRecord)]] = [:]
    private var controllers: [String: [String]] = [:]
    private var dnIndex: [String: PrincipalRef] = [:]
    private var groupIndex: [String: (domain: String, position: Int)] = [:]
    /// Entries skipped with a note (contacts): members naming them are dropped quietly.
    private var skipped: Set<String> = []
    /// The line of each account's `sAMAccountName`, by domain and name (ASCII case folded): names are unique in a domain.
    private var accountLines: [String: Int] = [:]
    /// Objects of classes the model does not read, by their most specific class.
    private var otherClasses: [String: Int] = [:]

    init(file: String) { self.file = file }

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

    private mutating func noteDomain(_ d: String) { if !domainOrder.contains(d) { domainOrder.append(d) } }

    // MARK: Reading records

    mutating func read(_ records: [LDIFRecord]) throws(DirectoryError) {
        for r in records where !r.dn.isEmpty {
            let classes = r.all("objectClass").map { ServiceTarget.asciiLower($0.value) }
            let cls = Set(classes)
            if cls.contains("domaindns") {
                noteDomain(try domainOf(r))
            } else if cls.contains("crossref") {
                if let nb = r.first("nETBIOSName")?.value, let root = r.first("dnsRoot")?.value {
                    netbios[root.lowercased()] = nb
                }
            } else if cls.contains("trusteddomain") {
                try readTrust(r)
            } else if cls.contains("computer") {
                try readAccount(r, kind: "computer") { (me: inout LDIFImporter, d, sam) throws(DirectoryError) in try me.readComputer(r, domain: d, sam: sam) }
            } else if cls.contains("user") || cls.contains("person") || cls.contains("inetorgperson") {
                try readAccount(r, kind: "user") { (me: inout LDIFImporter, d, sam) throws(DirectoryError) in try me.readUser(r, domain: d, sam: sam) }
            } else if cls.contains("group") {
                try readAccount(r, kind: "group") { (me: inout LDIFImporter, d, sam) in me.readGroup(r, domain: d, sam: sam) }
            } else {
                otherClasses[classes.last ?? "(no objectClass)", default: 0] += 1
            }
        }
        if !otherClasses.isEmpty {
            let total = otherClasses.values.reduce(0, +)
            let list = otherClasses.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
                .map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            notes.append(LDIFNote(file: file, line: 0, message: "skipped \(total) object\(total == 1 ? "" : "s") the model does not read (\(list))"))
        }
    }

    /// A security principal: its domain and `sAMAccountName`; without one (a contact) it is skipped with a note.
    private mutating func readAccount(_ r: LDIFRecord, kind: String,
                                      _ body: (inout LDIFImporter, String, String) throws(DirectoryError) -> Void) throws(DirectoryError) {
        let d = try domainOf(r)
        guard let sam = r.first("sAMAccountName")?.value else {
            if kind == "user" {
                notes.append(LDIFNote(file: file, line: r.line, message: "skipped \(r.dn): a person without sAMAccountName (a contact, not an account)"))
                skipped.insert(Self.key(r.dn))
                return
            }
            throw error("\(kind) without sAMAccountName", r.line, "sAMAccountName")
        }
        // AD keeps sAMAccountName unique among a domain's users, computers and groups; a second object of the same
        // name would silently replace the first (and a DC replaced by a member server leaves a domain without one).
        let line = r.first("sAMAccountName")?.line ?? r.line
        let samKey = d + "\\" + ServiceTarget.asciiLower(sam)
        if let first = accountLines[samKey] {
            throw error("sAMAccountName '\(sam)' is used twice in \(d) (lines \(first) and \(line)): account names are unique in a domain",
                        line, "sAMAccountName", status: .alreadyExists)
        }
        accountLines[samKey] = line
        noteDomain(d)
        try body(&self, d, sam)
    }

    private mutating func readTrust(_ r: LDIFRecord) throws(DirectoryError) {
        let d = try domainOf(r)
        guard let partner = r.first("trustPartner") else { throw error("trustedDomain without trustPartner", r.line, "trustPartner") }
        guard let dirValue = r.first("trustDirection") else { throw error("trustedDomain without trustDirection", r.line, "trustDirection") }
        guard let raw = Int(dirValue.value), let direction = TrustDirection(rawValue: raw) else {
            throw error("trustDirection must be 1, 2 or 3, not '\(dirValue.value)'", dirValue.line, "trustDirection")
        }
        trusts.append((Trust(domain: d, partner: partner.value, direction: direction), r.line))
    }

    private mutating func readComputer(_ r: LDIFRecord, domain d: String, sam: String) throws(DirectoryError) {
        let u = UserAccountControl(rawValue: try uac(r))
        let isDC = u.contains(.serverTrustAccount) || (DistinguishedName(r.dn)?.contains(container: "Domain Controllers") ?? false)
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
        dnIndex[Self.key(r.dn)] = PrincipalRef(domain: d, name: c.samAccountName)
        objects[d, default: []].append((.computer(c), r))
    }

    private mutating func readUser(_ r: LDIFRecord, domain d: String, sam: String) throws(DirectoryError) {
        let u = UserAccountControl(rawValue: try uac(r))
        let user = UserAccount(samAccountName: sam, distinguishedName: r.dn, userPrincipalName: r.first("userPrincipalName")?.value,
                               sensitive: u.contains(.notDelegated), disabled: u.contains(.accountDisable),
                               otherAccountControl: u.subtracting(UserAccountControl.modelled).rawValue)
        dnIndex[Self.key(r.dn)] = PrincipalRef(domain: d, name: sam)
        objects[d, default: []].append((.user(user), r))
    }

    private mutating func readGroup(_ r: LDIFRecord, domain d: String, sam: String) {
        let g = Group(samAccountName: sam, distinguishedName: r.dn)
        let k = Self.key(r.dn)
        dnIndex[k] = PrincipalRef(domain: d, name: sam)
        groupIndex[k] = (d, objects[d, default: []].count)
        objects[d, default: []].append((.group(g), r))
    }

    // MARK: Linking and assembling

    /// Membership: `member` on groups, `memberOf` on members.
    private mutating func linkMembers() throws(DirectoryError) {
        for d in domainOrder {
            guard let list = objects[d] else { continue }
            for (object, r) in list {
                if case .group = object, let pos = groupIndex[Self.key(r.dn)]?.position {
                    for v in r.all("member") {
                        guard let m = try resolveMember(v), case .group(var g)? = objects[d]?[pos].0 else { continue }
                        g.members.insert(m)
                        objects[d]?[pos].0 = .group(g)
                    }
                }
                for v in r.all("memberOf") {
                    guard let gi = groupIndex[Self.key(v.value)], case .group(var g)? = objects[gi.domain]?[gi.position].0 else {
                        if v.value.lowercased().contains("cn=builtin") { continue }
                        throw error("memberOf names a group that is not in the file: '\(v.value)'", v.line, "memberOf", status: .dsNoSuchObject)
                    }
                    guard let me = dnIndex[Self.key(r.dn)] else { continue }
                    g.members.insert(me)
                    objects[gi.domain]?[gi.position].0 = .group(g)
                }
            }
        }
    }

    private func resolveMember(_ v: LDIFRecord.Value) throws(DirectoryError) -> PrincipalRef? {
        let k = Self.key(v.value)
        if let ref = dnIndex[k] { return ref }
        if skipped.contains(k) || k.contains("cn=foreignsecurityprincipals") { return nil }
        throw error("\(v.name) names an object that is not in the file: '\(v.value)'", v.line, v.name, status: .dsNoSuchObject)
    }

    /// SPNs must be unique in the whole forest (checked before loading, to name the line).
    private func checkSPNs() throws(DirectoryError) {
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
    }

    mutating func assemble() throws(DirectoryError) -> Directory {
        try linkMembers()
        try checkSPNs()
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
