/// Connection data of the private LDAP server, as krb5.conf needs it.
struct LDAPSettings: Sendable {
    var uri: String
    var suffix: String
    var rootDN: String
    var rootPassword: String
    var containerDN: String { "cn=krbContainer," + suffix }
}
