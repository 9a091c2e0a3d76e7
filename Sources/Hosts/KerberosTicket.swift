import Directory

/// A Kerberos ticket in a host's own cache (the computer account's TGT or a service ticket).
public struct KerberosTicket: Sendable, Hashable, Codable {
    /// `krbtgt/CONTOSO.COM` or an SPN.
    public var server: String
    /// The DC that issued it (lower-cased name).
    public var issuedBy: String
    public var issuedAt: SimTime
    public var expiresAt: SimTime
    /// The delegation setting the issuing DC had for the host's account at issue time (rule A3).
    public var delegation: DelegationSnapshot
    /// The replication stamp of the account the snapshot was taken from (nil when unknown).
    public var accountStamp: ObjectStamp?

    public init(server: String, issuedBy: String, issuedAt: SimTime, expiresAt: SimTime, delegation: DelegationSnapshot,
                accountStamp: ObjectStamp? = nil) {
        self.server = server
        self.issuedBy = issuedBy
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.delegation = delegation
        self.accountStamp = accountStamp
    }

    @inlinable
    public func isValid(at now: SimTime) -> Bool { now < expiresAt }
}

/// A host's own ticket cache (what `klist -li 0x3e7` shows).
public struct TicketCache: Sendable, Hashable, Codable {
    /// Default ticket lifetime: 10 hours, as in AD's default Kerberos policy.
    public static let defaultLifetime = SimDuration.hours(10)

    public private(set) var tgt: KerberosTicket?
    public private(set) var serviceTickets: [KerberosTicket] = []

    public init() {}

    /// The TGT if still valid at `now`.
    @inlinable
    public func validTGT(at now: SimTime) -> KerberosTicket? {
        guard let tgt, tgt.isValid(at: now) else { return nil }
        return tgt
    }

    public mutating func store(tgt: KerberosTicket) {
        self.tgt = tgt
        serviceTickets.removeAll()
    }

    public mutating func store(serviceTicket: KerberosTicket) {
        serviceTickets.removeAll { $0.server.lowercased() == serviceTicket.server.lowercased() }
        serviceTickets.append(serviceTicket)
    }

    /// `klist purge`.
    public mutating func purge() {
        tgt = nil
        serviceTickets.removeAll()
    }

    /// Drops tickets that expired by `now`.
    public mutating func expire(at now: SimTime) {
        if let t = tgt, !t.isValid(at: now) { tgt = nil }
        serviceTickets.removeAll { !$0.isValid(at: now) }
    }
}
