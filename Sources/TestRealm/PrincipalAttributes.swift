/// Principal flags and lifetimes, as `kadmin` sets them. `nil` leaves a setting as it is
/// (on creation: the KDC default).
public struct PrincipalAttributes: Sendable, Hashable {
    /// `+allow_forwardable` / `-allow_forwardable` (false = tickets for or from it are never forwardable).
    public var forwardable: Bool?
    /// `+ok_to_auth_as_delegate`: may use protocol transition (S4U2Self) with a forwardable result.
    public var okToAuthAsDelegate: Bool?
    /// `+ok_as_delegate`: clients may delegate their TGT to this service (Windows "trusted for delegation").
    public var okAsDelegate: Bool?
    /// `+requires_preauth`.
    public var requiresPreauth: Bool?
    /// `+allow_renewable` / `-allow_renewable`.
    public var renewable: Bool?
    /// `+allow_proxiable` / `-allow_proxiable`.
    public var proxiable: Bool?
    /// `-maxlife`: the longest ticket the KDC issues for or to this principal (whole seconds; short is fine).
    public var maxTicketLifetime: Duration?
    /// `-maxrenewlife`.
    public var maxRenewableLifetime: Duration?

    public init(forwardable: Bool? = nil, okToAuthAsDelegate: Bool? = nil, okAsDelegate: Bool? = nil,
                requiresPreauth: Bool? = nil, renewable: Bool? = nil, proxiable: Bool? = nil,
                maxTicketLifetime: Duration? = nil, maxRenewableLifetime: Duration? = nil) {
        self.forwardable = forwardable
        self.okToAuthAsDelegate = okToAuthAsDelegate
        self.okAsDelegate = okAsDelegate
        self.requiresPreauth = requiresPreauth
        self.renewable = renewable
        self.proxiable = proxiable
        self.maxTicketLifetime = maxTicketLifetime
        self.maxRenewableLifetime = maxRenewableLifetime
    }

    /// No changes: KDC defaults.
    public static let none = PrincipalAttributes()

    /// The `kadmin addprinc`/`modprinc` options for these attributes, one argv-style word each.
    var kadminOptions: [String] {
        var options: [String] = []
        func flag(_ value: Bool?, _ name: String) {
            if let value { options.append((value ? "+" : "-") + name) }
        }
        flag(forwardable, "allow_forwardable")
        flag(okToAuthAsDelegate, "ok_to_auth_as_delegate")
        flag(okAsDelegate, "ok_as_delegate")
        flag(requiresPreauth, "requires_preauth")
        flag(renewable, "allow_renewable")
        flag(proxiable, "allow_proxiable")
        if let maxTicketLifetime { options += ["-maxlife", Self.deltat(maxTicketLifetime)] }
        if let maxRenewableLifetime { options += ["-maxrenewlife", Self.deltat(maxRenewableLifetime)] }
        return options
    }

    /// A duration as krb5 writes it (`"90s"`), rounded up to whole seconds.
    static func deltat(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let whole = max(0, seconds + (attoseconds > 0 ? 1 : 0))
        return "\(whole)s"
    }
}
