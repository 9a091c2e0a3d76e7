/// The `userAccountControl` bits this simulation reads and writes.
public struct UserAccountControl: OptionSet, Sendable, Hashable, Codable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let accountDisable = UserAccountControl(rawValue: 0x2)
    public static let normalAccount = UserAccountControl(rawValue: 0x200)
    public static let workstationTrustAccount = UserAccountControl(rawValue: 0x1000)
    public static let serverTrustAccount = UserAccountControl(rawValue: 0x2000)
    public static let dontExpirePassword = UserAccountControl(rawValue: 0x10000)
    public static let trustedForDelegation = UserAccountControl(rawValue: 0x80000)
    public static let notDelegated = UserAccountControl(rawValue: 0x100000)
    public static let trustedToAuthForDelegation = UserAccountControl(rawValue: 0x1000000)

    /// Bits modelled by typed properties; the rest are kept verbatim.
    static let modelled: UserAccountControl = [
        .accountDisable, .normalAccount, .workstationTrustAccount, .serverTrustAccount,
        .trustedForDelegation, .notDelegated, .trustedToAuthForDelegation,
    ]
}
