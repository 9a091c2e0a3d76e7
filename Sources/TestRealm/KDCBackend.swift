/// Where the realm's KDC keeps its principals.
public enum KDCBackend: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// MIT's default Berkeley-DB file. Fast to create; MIT refuses every S4U2Proxy request with it.
    case db2
    /// A private OpenLDAP `slapd` with the Kerberos schema (`db_library = kldap`). Holds
    /// `krbAllowedToDelegateTo`, so constrained delegation (S4U2Proxy) is really enforced.
    case ldap

    public var description: String { rawValue }
}
