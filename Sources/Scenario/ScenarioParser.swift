import Foundation
import Directory
import Hosts
import MigrationRules
import WindowsStatus

/// Reads the YAML scenario format (docs/scenario-format.md) into a ``ScenarioDocument``.
///
/// Strict: unknown keys, wrong types and impossible values are errors naming file, line and field.
enum ScenarioParser {
    static let topKeys = ["name", "description", "rules", "directory", "hosts", "steps"]

    static func parse(yaml: String, file: String, baseDirectory: String?) throws(ScenarioError) -> ScenarioDocument {
        let root = try YAMLField.root(yaml: yaml, file: file)
        let top = try root.mapping(allowed: topKeys, required: ["name", "directory", "hosts", "steps"])
        let name = try top.required("name").nonEmptyString()
        let description = try top["description"]?.string()
        var rules: [String] = []
        if let r = top["rules"] {
            for item in try r.list(allowSingle: true) {
                let id = try item.nonEmptyString()
                guard Rules.known.contains(id) else {
                    throw item.error("unknown rule '\(id)'; known: \(Rules.known.joined(separator: ", "))")
                }
                rules.append(id)
            }
        }
        let directory = try parseDirectory(top.required("directory"), baseDirectory: baseDirectory)
        var hosts: [HostSpec] = []
        for h in try top.required("hosts").list() { hosts.append(try parseHost(h)) }
        var steps: [ScenarioStep] = []
        for s in try top.required("steps").list() { steps.append(try parseStep(s)) }
        return ScenarioDocument(name: name, description: description, rules: rules, directory: directory,
                                hosts: hosts, steps: steps, file: file)
    }

    static func location(_ f: YAMLField) -> SourceLocation {
        SourceLocation(file: f.file, line: f.node.mark?.line, column: f.node.mark?.column, field: f.path)
    }

    // MARK: Directory

    static let directoryKeys = ["ldif", "domains", "trusts", "dcs", "computers", "users", "groups",
                                "replication-delay", "replication-delays"]

    static func parseDirectory(_ f: YAMLField, baseDirectory: String?) throws(ScenarioError) -> DirectorySpec {
        let m = try f.mapping(allowed: directoryKeys)
        var d = DirectorySpec()
        if let l = m["ldif"] {
            let path = try l.nonEmptyString()
            if path.hasPrefix("/") { d.ldif = path }
            else {
                let base = URL(fileURLWithPath: baseDirectory ?? FileManager.default.currentDirectoryPath, isDirectory: true)
                d.ldif = base.appendingPathComponent(path).standardizedFileURL.path
            }
            d.ldifLocation = location(l)
            if let inline = ["domains", "trusts", "dcs"].first(where: { m[$0] != nil }), let lf = m[inline] {
                throw lf.error("'\(inline)' cannot be combined with 'ldif' (the LDIF file defines them); add users, groups or computers inline if needed")
            }
        }
        for item in try m["domains"]?.list() ?? [] {
            let dm = try item.mapping(allowed: ["name", "netbios"], required: ["name"])
            d.domains.append(DomainSpec(name: try dm.required("name").nonEmptyString(),
                                        netbios: try dm["netbios"]?.nonEmptyString(), at: location(item)))
        }
        for item in try m["trusts"]?.list() ?? [] {
            let tm = try item.mapping(allowed: ["trusting", "trusted", "direction"], required: ["trusting", "trusted"])
            let direction = try tm["direction"]?.choice(["one-way", "two-way"]) ?? "one-way"
            d.trusts.append(TrustSpec(trusting: try tm.required("trusting").nonEmptyString(),
                                      trusted: try tm.required("trusted").nonEmptyString(),
                                      twoWay: direction == "two-way", at: location(item)))
        }
        try parseReplication(m, into: &d)
        for item in try m["dcs"]?.list() ?? [] {
            let cm = try item.mapping(allowed: ["name", "domain"], required: ["name", "domain"])
            d.dcs.append(DCSpec(name: try cm.required("name").nonEmptyString(),
                                domain: try cm.required("domain").nonEmptyString(), at: location(item)))
        }
        for item in try m["computers"]?.list() ?? [] {
            let cm = try item.mapping(allowed: ["name", "domain", "delegation", "allowed-to-delegate-to"], required: ["name"])
            let delegation = try cm["delegation"]?.choice(["none", "unconstrained", "kerberos-only", "any-protocol"])
            let targets = try cm["allowed-to-delegate-to"]?.strings() ?? []
            if let delegation, delegation == "none" || delegation == "unconstrained", !targets.isEmpty,
               let tf = cm["allowed-to-delegate-to"] {
                throw tf.error("services to delegate to need delegation kerberos-only or any-protocol, not \(delegation)")
            }
            d.computers.append(ComputerSpec(name: try cm.required("name").nonEmptyString(),
                                            domain: try cm["domain"]?.nonEmptyString(), delegation: delegation,
                                            allowedToDelegateTo: targets, at: location(item)))
        }
        for item in try m["users"]?.list() ?? [] {
            let um = try item.mapping(allowed: ["name", "domain", "groups", "sensitive"], required: ["name"])
            d.users.append(UserSpec(name: try um.required("name").nonEmptyString(),
                                    domain: try um["domain"]?.nonEmptyString(),
                                    groups: try um["groups"]?.strings() ?? [],
                                    sensitive: try um["sensitive"]?.bool() ?? false, at: location(item)))
        }
        for item in try m["groups"]?.list() ?? [] {
            let gm = try item.mapping(allowed: ["name", "domain", "members"], required: ["name"])
            d.groups.append(GroupSpec(name: try gm.required("name").nonEmptyString(),
                                      domain: try gm["domain"]?.nonEmptyString(),
                                      members: try gm["members"]?.strings() ?? [], at: location(item)))
        }
        if d.ldif == nil && d.domains.isEmpty {
            throw f.error("needs 'ldif' or at least one entry in 'domains'")
        }
        return d
    }

    // MARK: Hosts

    static let hostKeys = ["name", "domain", "os", "hyper-v", "logon-dc", "credential-guard", "addresses",
                           "local-groups", "vms", "settings"]
    static let settingKeys = ["migration-enabled", "maximum-virtual-machine-migrations", "use-any-network-for-migration",
                              "migration-networks", "authentication-type", "performance-option"]
    static let osChoices = ["2012", "2012r2", "2016", "2019", "2022", "2025"]

    static func parseHost(_ f: YAMLField) throws(ScenarioError) -> HostSpec {
        let m = try f.mapping(allowed: hostKeys, required: ["name"])
        let os = try m["os"].map { o throws(ScenarioError) in try osChoice(o) } ?? "2012r2"
        var localGroups: [String: [String]] = [:]
        if let lg = m["local-groups"] {
            for (group, members) in try lg.dictionary() {
                let canonical = ["Administrators", "Hyper-V Administrators"]
                    .first { $0.caseInsensitiveCompare(group) == .orderedSame } ?? group
                localGroups[canonical, default: []] += try members.strings()
            }
        }
        var settings = HostSettingsSpec()
        if let s = m["settings"] {
            let sm = try s.mapping(allowed: settingKeys)
            settings.at = location(s)
            settings.migrationEnabled = try sm["migration-enabled"]?.bool()
            settings.maximumVirtualMachineMigrations = try sm["maximum-virtual-machine-migrations"]?.int(min: 1, max: 1024)
            settings.useAnyNetworkForMigration = try sm["use-any-network-for-migration"]?.bool()
            settings.migrationNetworks = try sm["migration-networks"]?.strings()
            settings.authenticationType = try sm["authentication-type"].map { f throws(ScenarioError) in try authType(f) }
            settings.performanceOption = try sm["performance-option"].map { f throws(ScenarioError) in try perfOption(f) }
            if os == "2012", let p = settings.performanceOption, p != .tcpIP, let pf = sm["performance-option"] {
                throw pf.error("Windows Server 2012 supports only the TCPIP performance option, not \(p.rawValue)")
            }
        }
        let hyperV = try m["hyper-v"]?.bool() ?? true
        if !hyperV, let s = m["vms"], !(try s.strings()).isEmpty {
            throw s.error("a host without Hyper-V cannot have virtual machines")
        }
        var spec = HostSpec(name: try m.required("name").nonEmptyString(), domain: try m["domain"]?.nonEmptyString(),
                            os: os, hyperV: hyperV, logonDC: try m["logon-dc"]?.nonEmptyString(),
                            credentialGuard: try m["credential-guard"]?.bool(),
                            addresses: try m["addresses"]?.strings() ?? [], localGroups: localGroups,
                            vms: try m["vms"]?.strings() ?? [], settings: settings, at: location(f))
        spec.osGiven = m["os"] != nil
        return spec
    }

    static func osChoice(_ f: YAMLField) throws(ScenarioError) -> String {
        let raw = try f.string().lowercased().replacingOccurrences(of: " ", with: "")
            .replacingOccurrences(of: "windowsserver", with: "")
        guard let c = osChoices.first(where: { $0 == raw }) else {
            throw f.error("'\(try f.string())' is not one of: \(osChoices.joined(separator: ", "))")
        }
        return c
    }

    static func authType(_ f: YAMLField) throws(ScenarioError) -> MigrationAuthenticationType {
        let c = try f.choice(MigrationAuthenticationType.allCases.map(\.rawValue))
        return MigrationAuthenticationType(parsing: c) ?? .credSSP
    }

    static func perfOption(_ f: YAMLField) throws(ScenarioError) -> MigrationPerformanceOption {
        let c = try f.choice(MigrationPerformanceOption.allCases.map(\.rawValue) + ["TCP/IP"])
        return MigrationPerformanceOption(parsing: c) ?? .compression
    }

    // MARK: Steps

    static let actionKeys = ["sign-on", "sign-off", "enable-vmmigration", "disable-vmmigration", "set-vmhost",
                             "add-vmmigrationnetwork", "remove-vmmigrationnetwork", "set-vmmigrationnetwork",
                             "add-delegation", "remove-delegation", "replicate", "advance-clock", "purge-tickets",
                             "restart", "move", "moves", "new-vm", "add-localgroupmember", "remove-localgroupmember",
                             "add-adgroupmember", "remove-adgroupmember", "set-adaccountcontrol", "set-credential-guard"]

    static func parseStep(_ f: YAMLField) throws(ScenarioError) -> ScenarioStep {
        let m = try f.mapping(allowed: actionKeys + ["expect", "name"])
        let (key, body) = try m.exactlyOne(of: actionKeys)
        let action = try parseAction(key, body)
        var expectations: [Expectation]
        if case .moves(let list) = action {
            if let e = m["expect"] {
                if case .sequence = e.node {
                    expectations = []
                    for item in try e.list() { expectations.append(try parseExpectation(item)) }
                    guard expectations.count == list.count else {
                        throw e.error("a 'moves' step with \(list.count) moves needs \(list.count) expectations, found \(expectations.count)")
                    }
                } else {
                    expectations = Array(repeating: try parseExpectation(e), count: list.count)
                }
            } else {
                expectations = Array(repeating: .success, count: list.count)
            }
        } else {
            expectations = [try m["expect"].map { e throws(ScenarioError) in try parseExpectation(e) } ?? .success]
        }
        return ScenarioStep(action: action, expectations: expectations, label: try m["name"]?.string(), at: location(f))
    }

    /// A mapping, or a bare scalar standing for its `host` key.
    static func hostOnly(_ f: YAMLField) throws(ScenarioError) -> String {
        if case .scalar = f.node { return try f.nonEmptyString() }
        return try f.mapping(allowed: ["host"], required: ["host"]).required("host").nonEmptyString()
    }

    static func parseAction(_ key: String, _ f: YAMLField) throws(ScenarioError) -> ScenarioAction {
        switch key {
        case "sign-on":
            let m = try f.mapping(allowed: ["user", "host", "method", "from"], required: ["user", "host"])
            let method = try m["method"]?.choice(["console", "rdp", "remote-desktop", "remote-shell-kerberos", "remote-shell-credssp"]) ?? "console"
            return .signOn(user: try m.required("user").nonEmptyString(), host: try m.required("host").nonEmptyString(),
                           method: SignOnKind(parsing: method) ?? .console, from: try m["from"]?.nonEmptyString())
        case "sign-off":
            let m = try f.mapping(allowed: ["user", "host"], required: ["user", "host"])
            return .signOff(user: try m.required("user").nonEmptyString(), host: try m.required("host").nonEmptyString())
        case "enable-vmmigration": return .enableMigration(host: try hostOnly(f))
        case "disable-vmmigration": return .disableMigration(host: try hostOnly(f))
        case "purge-tickets": return .purgeTickets(host: try hostOnly(f))
        case "restart": return .restart(host: try hostOnly(f))
        case "set-vmhost":
            let m = try f.mapping(allowed: ["host", "maximum-virtual-machine-migrations", "use-any-network-for-migration",
                                            "authentication-type", "performance-option"], required: ["host"])
            let change = HostSettingsChange(
                maximumVirtualMachineMigrations: try m["maximum-virtual-machine-migrations"]?.int(min: 1, max: 1024),
                useAnyNetworkForMigration: try m["use-any-network-for-migration"]?.bool(),
                authenticationType: try m["authentication-type"].map { f throws(ScenarioError) in try authType(f) },
                performanceOption: try m["performance-option"].map { f throws(ScenarioError) in try perfOption(f) })
            if change.isEmpty { throw f.error("set-vmhost needs at least one setting to change") }
            return .setHost(host: try m.required("host").nonEmptyString(), settings: change)
        case "add-vmmigrationnetwork":
            let m = try f.mapping(allowed: ["host", "subnet", "priority"], required: ["host", "subnet"])
            return .addMigrationNetwork(host: try m.required("host").nonEmptyString(),
                                        subnet: try subnet(m.required("subnet")), priority: try m["priority"]?.int(min: 0))
        case "remove-vmmigrationnetwork":
            let m = try f.mapping(allowed: ["host", "subnet"], required: ["host", "subnet"])
            return .removeMigrationNetwork(host: try m.required("host").nonEmptyString(), subnet: try subnet(m.required("subnet")))
        case "set-vmmigrationnetwork":
            let m = try f.mapping(allowed: ["host", "subnet", "new-subnet", "priority"], required: ["host", "subnet"])
            return .setMigrationNetwork(host: try m.required("host").nonEmptyString(), subnet: try subnet(m.required("subnet")),
                                        newSubnet: try m["new-subnet"].map { f throws(ScenarioError) in try subnet(f) },
                                        priority: try m["priority"]?.int(min: 0))
        case "advance-clock":
            let s = try f.string()
            guard let seconds = parseDuration(s) else {
                throw f.error("'\(s)' is not a duration (examples: 90, 90s, 15m, 10h, 1h30m, 2d)")
            }
            return .advanceClock(seconds: seconds)
        case "new-vm":
            let m = try f.mapping(allowed: ["host", "name"], required: ["host", "name"])
            return .newVM(host: try m.required("host").nonEmptyString(), name: try m.required("name").nonEmptyString())
        case "add-localgroupmember", "remove-localgroupmember":
            let m = try f.mapping(allowed: ["host", "group", "member"], required: ["host", "group", "member"])
            let g = try m.required("group")
            guard let group = LocalGroup(parsing: try g.string()) else {
                throw g.error("'\(try g.string())' is not Administrators or Hyper-V Administrators")
            }
            return .localGroupMember(host: try m.required("host").nonEmptyString(), group: group,
                                     member: try m.required("member").nonEmptyString(), add: key.hasPrefix("add"))
        case "move":
            return .move(try parseMove(f))
        case "moves":
            var list: [MoveSpec] = []
            for item in try f.list() { list.append(try parseMove(item)) }
            if list.count < 2 { throw f.error("'moves' starts several moves at once; give at least two (or use 'move')") }
            return .moves(list)
        default:
            return try parseAccountAction(key, f)
        }
    }

    /// Directory changes (delegation, replication, group membership, the sensitive flag) and Credential Guard.
    static func parseAccountAction(_ key: String, _ f: YAMLField) throws(ScenarioError) -> ScenarioAction {
        switch key {
        case "add-delegation", "remove-delegation":
            let add = key == "add-delegation"
            let m = try f.mapping(allowed: ["dc", "as", "computer", "services"] + (add ? ["protocol"] : []),
                                  required: ["dc", "as", "computer", "services"])
            let services = try m.required("services").strings()
            if services.isEmpty { throw m.error("'services' must list at least one service") }
            let proto = try m["protocol"]?.choice(["kerberos-only", "any-protocol"])
            return .delegation(DelegationChange(
                operation: add ? .add : .remove, dc: try m.required("dc").nonEmptyString(),
                actingUser: try m.required("as").nonEmptyString(), computer: try m.required("computer").nonEmptyString(),
                services: services, protocolChoice: proto.flatMap(DelegationKind.init(parsing:))))
        case "replicate":
            if case .scalar = f.node {
                _ = try f.choice(["all"])
                return .replicate(from: nil, to: nil)
            }
            let m = try f.mapping(allowed: ["from", "to"])
            return .replicate(from: try m["from"]?.nonEmptyString(), to: try m["to"]?.nonEmptyString())
        case "add-adgroupmember", "remove-adgroupmember":
            let m = try f.mapping(allowed: ["group", "member", "dc"], required: ["group", "member"])
            return .domainGroupMember(group: try m.required("group").nonEmptyString(), member: try m.required("member").nonEmptyString(),
                                      add: key.hasPrefix("add"), dc: try m["dc"]?.nonEmptyString())
        case "set-adaccountcontrol":
            let m = try f.mapping(allowed: ["user", "account-not-delegated", "dc"], required: ["user", "account-not-delegated"])
            return .setSensitive(user: try m.required("user").nonEmptyString(), sensitive: try m.required("account-not-delegated").bool(),
                                 dc: try m["dc"]?.nonEmptyString())
        case "set-credential-guard":
            let m = try f.mapping(allowed: ["host", "enabled"], required: ["host", "enabled"])
            return .setCredentialGuard(host: try m.required("host").nonEmptyString(), enabled: try m.required("enabled").bool())
        default:
            throw f.error("unknown step '\(key)'")
        }
    }

    static func parseMove(_ f: YAMLField) throws(ScenarioError) -> MoveSpec {
        let m = try f.mapping(allowed: ["user", "on", "vm", "from", "to", "kind", "address", "session"], required: ["user", "vm", "to"])
        let session = try m["session"]?.choice(["console", "rdp", "remote-desktop", "remote-shell-kerberos", "remote-shell-credssp"])
        let kind = try m["kind"]?.choice(MoveKind.allCases.map(\.rawValue)) ?? "live"
        let from = try m["from"]?.nonEmptyString()
        let to = try m.required("to").nonEmptyString()
        if let from, from.caseInsensitiveCompare(to) == .orderedSame, let tf = m["to"] {
            throw tf.error("the destination is the source (\(to))")
        }
        return MoveSpec(user: try m.required("user").nonEmptyString(), startedOn: try m["on"]?.nonEmptyString(),
                           vm: try m.required("vm").nonEmptyString(), source: from, destination: to,
                           kind: MoveKind(rawValue: kind) ?? .live, address: try m["address"].map { f throws(ScenarioError) in try address(f) },
                           session: session.flatMap(SignOnKind.init(parsing:)))
    }

    static func subnet(_ f: YAMLField) throws(ScenarioError) -> String {
        let s = try f.nonEmptyString()
        guard Hosts.IPv4Subnet(s) != nil else { throw f.error("'\(s)' is not an IPv4 address or subnet (192.168.10.0/24)") }
        return s
    }

    static func address(_ f: YAMLField) throws(ScenarioError) -> String {
        let s = try f.nonEmptyString()
        guard Hosts.IPv4Address(s) != nil else { throw f.error("'\(s)' is not an IPv4 address") }
        return s
    }

    static func parseExpectation(_ f: YAMLField) throws(ScenarioError) -> Expectation {
        if case .scalar = f.node {
            let c = try f.choice(["success", "queued", "error"])
            return Expectation(result: Expectation.Result(rawValue: c) ?? .success)
        }
        let m = try f.mapping(allowed: ["result", "error", "rule", "stage", "text", "warnings"])
        var result: Expectation.Result
        if let r = m["result"] {
            result = Expectation.Result(rawValue: try r.choice(["success", "queued", "error"])) ?? .success
        } else {
            result = m["error"] != nil || m["stage"] != nil || m["text"] != nil ? .error : .success
        }
        var status: StatusCode?
        if let e = m["error"] {
            let s = try e.nonEmptyString()
            guard let st = WindowsStatus.parse(s) else {
                throw e.error("'\(s)' is not a status code (0x8009030E) or known symbol (SEC_E_NO_CREDENTIALS)")
            }
            status = StatusCode(st.code)
            if result != .error { throw e.error("'error' given but result is \(result.rawValue)") }
        }
        let rule = try m["rule"]?.nonEmptyString()
        if let rule, !Rules.known.contains(rule), let rf = m["rule"] {
            throw rf.error("unknown rule '\(rule)'; known: \(Rules.known.joined(separator: ", "))")
        }
        var warnings: [String] = []
        for w in try m["warnings"]?.list(allowSingle: true) ?? [] {
            let id = try w.nonEmptyString()
            guard Rules.known.contains(id) else { throw w.error("unknown rule '\(id)'") }
            warnings.append(id)
        }
        return Expectation(result: result, status: status, rule: rule,
                           stage: try m["stage"]?.choice(["source", "destination", "directory", "host"]),
                           text: try m["text"]?.string(), warnings: warnings)
    }

    /// `replication-delay: 15m` and `replication-delays: [{from: DC01, to: DC02, delay: 1h}]`.
    static func parseReplication(_ m: YAMLMapping, into d: inout DirectorySpec) throws(ScenarioError) {
        func duration(_ f: YAMLField) throws(ScenarioError) -> Int {
            let text = try f.nonEmptyString()
            guard let s = parseDuration(text) else { throw f.error("'\(text)' is not a duration (90s, 15m, 1h30m)") }
            return s
        }
        if let f = m["replication-delay"] { d.replicationDelay = try duration(f) }
        for item in try m["replication-delays"]?.list() ?? [] {
            let lm = try item.mapping(allowed: ["from", "to", "delay"], required: ["from", "to", "delay"])
            d.linkDelays.append(LinkDelaySpec(from: try lm.required("from").nonEmptyString(), to: try lm.required("to").nonEmptyString(),
                                              seconds: try duration(lm.required("delay")), at: location(item)))
        }
    }

    static func parseDuration(_ text: String) -> Int? {
        SimDuration(parsing: text).map { Int($0.seconds) }
    }
}

/// The rule ids of docs/rules.md.
public enum Rules {
    public static let known = ["P1", "P2", "P3", "P4", "P5", "N1", "N2", "A1", "A2", "A2b", "A3", "A4", "A5", "A6", "A7", "S1"]
}
