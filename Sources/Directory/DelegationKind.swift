import Foundation

/// A computer account's delegation setting (the Delegation tab of Active Directory Users and Computers).
public enum DelegationKind: String, Sendable, Hashable, Codable, CaseIterable {
    /// "Do not trust this computer for delegation".
    case none
    /// "Trust this computer for delegation to any service" (TRUSTED_FOR_DELEGATION).
    case unconstrained
    /// "Trust this computer for delegation to the specified services only — Use Kerberos only".
    case constrainedKerberosOnly = "kerberos-only"
    /// "… — Use any authentication protocol" (TRUSTED_TO_AUTH_FOR_DELEGATION, protocol transition).
    case constrainedAnyProtocol = "any-protocol"

    /// True for both constrained kinds.
    public var isConstrained: Bool { self == .constrainedKerberosOnly || self == .constrainedAnyProtocol }

    /// Parses `none`, `unconstrained`, `kerberos-only`/`kerberos`/`constrained`, `any-protocol`/`any`.
    public init?(parsing text: String) {
        switch text.lowercased().replacingOccurrences(of: "_", with: "-") {
        case "none": self = .none
        case "unconstrained", "any-service": self = .unconstrained
        case "kerberos-only", "kerberos", "constrained", "constrained-kerberos-only": self = .constrainedKerberosOnly
        case "any-protocol", "any", "protocol-transition", "constrained-any-protocol": self = .constrainedAnyProtocol
        default: return nil
        }
    }
}

/// The service class of an SPN this simulation cares about.
public enum ServiceClass: Sendable, Hashable, Codable, CustomStringConvertible {
    /// `Microsoft Virtual System Migration Service` (the Hyper-V VMMS migration listener).
    case migration
    /// `cifs` (SMB, needed for storage moves).
    case cifs
    /// `HOST`.
    case host
    /// Any other class, lower-cased.
    case other(String)

    public static let migrationServiceName = "Microsoft Virtual System Migration Service"

    public init(_ text: Substring) {
        switch text.lowercased() {
        case "microsoft virtual system migration service": self = .migration
        case "cifs": self = .cifs
        case "host": self = .host
        case let s: self = .other(s)
        }
    }

    /// The class as AD spells it.
    public var name: String {
        switch self {
        case .migration: return ServiceClass.migrationServiceName
        case .cifs: return "cifs"
        case .host: return "HOST"
        case .other(let s): return s
        }
    }

    public var description: String { name }
}

/// An SPN reduced to what delegation checks compare: service class and the host's short name
/// (lower-cased). `cifs/TestServer02` and `cifs/TestServer02.contoso.com` name the same target.
public struct ServiceTarget: Sendable, Hashable, Codable, CustomStringConvertible {
    public var serviceClass: ServiceClass
    /// Lower-cased short host name (`testserver02`).
    public var host: String

    public init(serviceClass: ServiceClass, host: String) {
        self.serviceClass = serviceClass
        self.host = ServiceTarget.shortKey(host)
    }

    /// A target whose host is already a lower-cased short key (no normalisation, no allocation).
    @inlinable
    public init(serviceClass: ServiceClass, key: String) {
        self.serviceClass = serviceClass
        self.host = key
    }

    /// Parses `class/host[:port][/name]`; nil when there is no `/`.
    public init?(spn: String) {
        guard let slash = spn.firstIndex(of: "/") else { return nil }
        let cls = spn[..<slash]
        var rest = spn[spn.index(after: slash)...]
        if let s = rest.firstIndex(of: "/") { rest = rest[..<s] }
        if let c = rest.firstIndex(of: ":") { rest = rest[..<c] }
        guard !cls.isEmpty, !rest.isEmpty else { return nil }
        self.serviceClass = ServiceClass(cls)
        self.host = ServiceTarget.shortKey(String(rest))
    }

    /// ASCII-only names lower-cased cheaply; returns the string itself when already lower-case.
    public static func asciiLower(_ s: String) -> String {
        var upper = false
        for u in s.utf8 {
            if u >= 128 { return s.lowercased() }
            if u >= 65 && u <= 90 { upper = true }
        }
        return upper ? asciiLowered(s.utf8[...]) : s
    }

    /// Lower-cases ASCII bytes into a new string (small strings need no allocation).
    static func asciiLowered(_ bytes: Substring.UTF8View) -> String {
        String(unsafeUninitializedCapacity: bytes.count) { buffer in
            var i = 0
            for u in bytes {
                buffer[i] = u >= 65 && u <= 90 ? u + 32 : u
                i += 1
            }
            return i
        }
    }

    /// `TestServer02.contoso.com` → `testserver02`.
    public static func shortKey(_ name: String) -> String {
        // Fast path: already a key (ASCII lower-case, no `.` or `$`), as stored names are.
        var clean = true
        for u in name.utf8 where u == UInt8(ascii: ".") || u == UInt8(ascii: "$") || (u >= 65 && u <= 90) || u >= 128 {
            clean = false
            break
        }
        if clean { return name }
        var s = Substring(name)
        if let dot = s.utf8.firstIndex(of: UInt8(ascii: ".")) { s = s[..<dot] }
        if s.utf8.last == UInt8(ascii: "$") { s = s.dropLast() }
        if s.utf8.contains(where: { $0 >= 128 }) { return s.lowercased() }
        return asciiLowered(s.utf8)
    }

    public var description: String { "\(serviceClass.name)/\(host)" }
}

/// What a Kerberos ticket carries about its client's delegation rights at the time it was issued
/// (rule A3: changes count only once a new ticket is issued).
public struct DelegationSnapshot: Sendable, Hashable, Codable {
    public var kind: DelegationKind
    public var targets: Set<ServiceTarget>

    public init(kind: DelegationKind, targets: Set<ServiceTarget>) {
        self.kind = kind
        self.targets = targets
    }

    public static let none = DelegationSnapshot(kind: .none, targets: [])

    private enum CodingKeys: String, CodingKey { case kind, targets }

    /// Targets are written sorted, so equal snapshots encode to equal JSON.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(kind, forKey: .kind)
        try c.encode(targets.sorted { $0.description < $1.description }, forKey: .targets)
    }

    /// Whether constrained delegation to `target` is allowed (unconstrained allows every target).
    @inlinable
    public func allows(_ target: ServiceTarget) -> Bool {
        switch kind {
        case .none: return false
        case .unconstrained: return true
        case .constrainedKerberosOnly, .constrainedAnyProtocol: return targets.contains(target)
        }
    }
}
