import CGSSAPI

extension GSSCredential {
    /// Restricts the Kerberos enctypes contexts initiated with this credential may use for the
    /// session key and subkeys (`gss_krb5_set_allowable_enctypes`), e.g. `[20, 19]` for the
    /// aes-sha2 enctypes only. Call it before the credential is used.
    public func setAllowableEnctypes(_ enctypes: [Int32]) throws(GSSError) {
        var minor: OM_uint32 = 0
        var list = enctypes
        let major = gss_krb5_set_allowable_enctypes(&minor, handle, OM_uint32(list.count), &list)
        guard major == 0 else { throw GSSError(.acquireCredential, major: major, minor: minor) }
    }
}
