/// A user account.
public struct UserAccount: Sendable, Hashable, Codable {
    public var samAccountName: String
    public var distinguishedName: String
    public var userPrincipalName: String?
    /// "Account is sensitive and cannot be delegated" (NOT_DELEGATED).
    public var sensitive: Bool
    public var disabled: Bool
    /// `userAccountControl` bits not modelled above.
    public var otherAccountControl: UInt32

    public init(samAccountName: String, distinguishedName: String, userPrincipalName: String? = nil,
                sensitive: Bool = false, disabled: Bool = false, otherAccountControl: UInt32 = 0) {
        self.samAccountName = samAccountName
        self.distinguishedName = distinguishedName
        self.userPrincipalName = userPrincipalName
        self.sensitive = sensitive
        self.disabled = disabled
        self.otherAccountControl = otherAccountControl
    }

    /// `CN=name,CN=Users,<domain>`.
    public static func standard(name: String, domain: Domain, sensitive: Bool = false) -> UserAccount {
        UserAccount(samAccountName: name,
                    distinguishedName: "CN=\(DistinguishedName.escape(name)),CN=Users,\(domain.distinguishedName)",
                    userPrincipalName: "\(name)@\(domain.dnsName)", sensitive: sensitive)
    }

    public var key: String { samAccountName.lowercased() }

    public var userAccountControl: UInt32 {
        var uac = UserAccountControl(rawValue: otherAccountControl)
        uac.insert(.normalAccount)
        if disabled { uac.insert(.accountDisable) }
        if sensitive { uac.insert(.notDelegated) }
        return uac.rawValue
    }
}

/// A security group. Members may be users, computers or groups, of this or a trusted domain.
public struct Group: Sendable, Hashable, Codable {
    public var samAccountName: String
    public var distinguishedName: String
    public var members: Set<PrincipalRef>

    public init(samAccountName: String, distinguishedName: String, members: Set<PrincipalRef> = []) {
        self.samAccountName = samAccountName
        self.distinguishedName = distinguishedName
        self.members = members
    }

    /// `CN=name,CN=Users,<domain>`.
    public static func standard(name: String, domain: Domain, members: Set<PrincipalRef> = []) -> Group {
        Group(samAccountName: name,
              distinguishedName: "CN=\(DistinguishedName.escape(name)),CN=Users,\(domain.distinguishedName)",
              members: members)
    }

    public var key: String { samAccountName.lowercased() }

    private enum CodingKeys: String, CodingKey { case samAccountName, distinguishedName, members }

    /// Members are written sorted, so equal groups encode to equal JSON.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(samAccountName, forKey: .samAccountName)
        try c.encode(distinguishedName, forKey: .distinguishedName)
        try c.encode(members.sorted(), forKey: .members)
    }

    public static let domainAdmins = "Domain Admins"
    public static let protectedUsers = "Protected Users"
}

/// One directory object of any of the three kinds.
public enum DirectoryObject: Sendable, Hashable, Codable {
    case computer(ComputerAccount)
    case user(UserAccount)
    case group(Group)

    public var key: String {
        switch self {
        case .computer(let c): return c.samAccountName.lowercased()
        case .user(let u): return u.key
        case .group(let g): return g.key
        }
    }

    public var distinguishedName: String {
        switch self {
        case .computer(let c): return c.distinguishedName
        case .user(let u): return u.distinguishedName
        case .group(let g): return g.distinguishedName
        }
    }
}
