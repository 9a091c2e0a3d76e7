/// How to reach the private slapd of an LDAP-backed realm (to read or write other attributes).
public struct LDAPConnection: Sendable, Hashable {
    /// `ldap://127.0.0.1:PORT/`.
    public var uri: String
    /// `ldapi://…` socket inside the realm directory.
    public var socketURI: String
    /// Root DN (simple bind) and its password.
    public var rootDN: String
    public var rootPassword: String
    /// Directory suffix (`dc=testrealm`).
    public var suffix: String
    /// `cn=krbContainer,<suffix>`; principals live under `cn=<REALM>,` this.
    public var kerberosContainerDN: String
}
