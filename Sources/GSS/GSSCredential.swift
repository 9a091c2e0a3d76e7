import CGSSAPI

/// What a credential may be used for (`gss_cred_usage_t`).
public enum GSSCredentialUsage: Int32, Sendable, Hashable {
    case both = 0
    case initiate = 1
    case accept = 2
}

/// A GSSAPI credential (`gss_cred_id_t`): tickets or keys for one principal.
///
/// Acquire with `mechanisms: [.kerberos, .spnego]` for a credential that SPNEGO contexts can use.
///
/// Immutable after acquisition and internally locked by MIT, hence `Sendable`. Acquiring may
/// talk to the KDC (password, impersonation): call those from a thread that may block, or use
/// the `async` variants.
public final class GSSCredential: @unchecked Sendable {
    let handle: gss_cred_id_t
    /// What must outlive the handle (the private ccache of a ``derived(mechanisms:usage:)`` credential); set once,
    /// before the credential is shared.
    private var retained: AnyObject?

    init(owning handle: gss_cred_id_t) { self.handle = handle }

    deinit {
        var minor: OM_uint32 = 0
        var h: gss_cred_id_t? = handle
        gss_release_cred(&minor, &h)
    }

    /// Acquires a credential (`gss_acquire_cred_from`). With no `store`, the process defaults
    /// (`KRB5CCNAME`, `KRB5_KTNAME`) apply; give a store to keep hosts apart.
    public static func acquire(name: GSSName? = nil, usage: GSSCredentialUsage = .initiate,
                               mechanisms: [GSSMechanism] = [.kerberos], lifetime: Duration? = nil,
                               store: GSSCredentialStore? = nil) throws(GSSError) -> GSSCredential {
        var minor: OM_uint32 = 0
        var cred: gss_cred_id_t? = nil
        let major = GSSMechanism.withOIDSet(mechanisms) { set in
            if let store {
                return store.withKeyValueSet { kv in
                    gss_acquire_cred_from(&minor, name?.handle, GSSLifetime.request(lifetime), set,
                                          usage.rawValue, kv, &cred, nil, nil)
                }
            }
            return gss_acquire_cred(&minor, name?.handle, GSSLifetime.request(lifetime), set,
                                    usage.rawValue, &cred, nil, nil)
        }
        guard major == 0, let cred else {
            throw GSSError(.acquireCredential, major: major, minor: minor)
        }
        return GSSCredential(owning: cred)
    }

    /// Gets an initial ticket for `name` with a password (`gss_acquire_cred_with_password`);
    /// contacts the KDC. The tickets stay in memory (use ``store(into:usage:overwrite:makeDefault:)``
    /// to write them to a ccache).
    public static func acquire(name: GSSName, password: String, usage: GSSCredentialUsage = .initiate,
                               mechanisms: [GSSMechanism] = [.kerberos],
                               lifetime: Duration? = nil) throws(GSSError) -> GSSCredential {
        var minor: OM_uint32 = 0
        var cred: gss_cred_id_t? = nil
        var secret = Array(password.utf8)
        let major = GSSMechanism.withOIDSet(mechanisms) { set in
            secret.withUnsafeMutableBytes { raw in
                var buffer = gss_buffer_desc(length: raw.count, value: raw.baseAddress)
                return gss_acquire_cred_with_password(&minor, name.handle, &buffer, GSSLifetime.request(lifetime),
                                                      set, usage.rawValue, &cred, nil, nil)
            }
        }
        for i in secret.indices { secret[i] = 0 }
        guard major == 0, let cred else {
            throw GSSError(.acquireCredentialWithPassword, major: major, minor: minor)
        }
        return GSSCredential(owning: cred)
    }

    /// A credential for `mechanisms` (for example `[.spnego]`) made from this credential's Kerberos tickets, without
    /// asking the KDC again: the tickets are stored into a private memory ccache, from which the new credential is
    /// acquired. The ccache is destroyed when the new credential goes away. One password AS exchange then serves a
    /// Kerberos context and a SPNEGO one (MIT's SPNEGO cannot use a Kerberos-only credential).
    public func derived(mechanisms: [GSSMechanism], usage: GSSCredentialUsage = .initiate) throws(GSSError) -> GSSCredential {
        let cache = GSSMemoryCCache()
        let store = GSSCredentialStore(ccache: cache.name)
        try self.store(into: store, usage: usage, mechanism: .kerberos, overwrite: true, makeDefault: false)
        let credential = try GSSCredential.acquire(name: try name, usage: usage, mechanisms: mechanisms, store: store)
        credential.retained = cache
        return credential
    }

    /// S4U2Self (protocol transition): a credential for `user` obtained by this service
    /// credential (`gss_acquire_cred_impersonate_name`); contacts the KDC. The service needs a
    /// TGT (a ccache, or keys through `client_keytab`); for a forwardable evidence ticket the
    /// KDC must allow it (MIT: `+ok_to_auth_as_delegate`).
    public func impersonate(_ user: GSSName, usage: GSSCredentialUsage = .initiate,
                            mechanisms: [GSSMechanism] = [.kerberos],
                            lifetime: Duration? = nil) throws(GSSError) -> GSSCredential {
        var minor: OM_uint32 = 0
        var cred: gss_cred_id_t? = nil
        let major = GSSMechanism.withOIDSet(mechanisms) { set in
            gss_acquire_cred_impersonate_name(&minor, handle, user.handle, GSSLifetime.request(lifetime), set,
                                              usage.rawValue, &cred, nil, nil)
        }
        guard major == 0, let cred else { throw GSSError(.impersonate, major: major, minor: minor) }
        return GSSCredential(owning: cred)
    }

    /// Writes the credential's tickets into `store` (`gss_store_cred_into`), e.g. a delegated
    /// TGT into the ccache of the session it belongs to.
    public func store(into store: GSSCredentialStore, usage: GSSCredentialUsage = .initiate,
                      mechanism: GSSMechanism = .kerberos, overwrite: Bool = true,
                      makeDefault: Bool = false) throws(GSSError) {
        var minor: OM_uint32 = 0
        let major = mechanism.withOID { oid in
            store.withKeyValueSet { kv in
                gss_store_cred_into(&minor, handle, usage.rawValue, oid, overwrite ? 1 : 0,
                                    makeDefault ? 1 : 0, kv, nil, nil)
            }
        }
        guard major == 0 else { throw GSSError(.storeCredential, major: major, minor: minor) }
    }

    /// The credential's principal, remaining lifetime (nil: indefinite) and usage (`gss_inquire_cred`).
    public func inquire() throws(GSSError) -> GSSCredentialInfo {
        var minor: OM_uint32 = 0
        var name: gss_name_t? = nil
        var lifetime: OM_uint32 = 0
        var usage: gss_cred_usage_t = 0
        let major = gss_inquire_cred(&minor, handle, &name, &lifetime, &usage, nil)
        guard major == 0, let name else { throw GSSError(.inquireCredential, major: major, minor: minor) }
        return GSSCredentialInfo(name: GSSName(owning: name), lifetime: GSSLifetime.reported(lifetime),
                                 usage: GSSCredentialUsage(rawValue: usage) ?? .both)
    }

    /// The principal the credential belongs to.
    public var name: GSSName { get throws(GSSError) { try inquire().name } }
    /// Remaining lifetime; zero when expired, nil when indefinite (keytab keys).
    public var lifetime: Duration? { get throws(GSSError) { try inquire().lifetime } }
    /// What the credential may be used for.
    public var usage: GSSCredentialUsage { get throws(GSSError) { try inquire().usage } }
}

/// A uniquely named MIT memory ccache, destroyed when this value goes away.
final class GSSMemoryCCache {
    let name: String

    init() {
        let random = (0..<16).map { _ in String(UInt8.random(in: 0...255), radix: 16) }.joined()
        name = "MEMORY:gss-derived-\(random)"
    }

    deinit {
        var context: krb5_context?
        guard krb5_init_context(&context) == 0, let context else { return }
        defer { krb5_free_context(context) }
        var cache: krb5_ccache?
        guard krb5_cc_resolve(context, name, &cache) == 0, let cache else { return }
        krb5_cc_destroy(context, cache)
    }
}
