import Foundation

/// The files of one realm inside its temporary directory, and the text of its two profiles.
struct RealmFiles: Sendable {
    let directory: String

    var krb5Config: String { directory + "/krb5.conf" }
    var kdcConfig: String { directory + "/kdc.conf" }
    var database: String { directory + "/principal" }
    var stash: String { directory + "/stash" }
    var aclFile: String { directory + "/kadm5.acl" }
    var kdcLog: String { directory + "/kdc.log" }
    var kdcOutput: String { directory + "/krb5kdc.out" }
    var kdcPIDFile: String { directory + "/krb5kdc.pid" }
    var libraryLog: String { directory + "/krb5lib.log" }
    var traceLog: String { directory + "/trace.log" }
    var replayCacheDirectory: String { directory + "/rcache" }
    var ccacheDirectory: String { directory + "/ccaches" }
    var keytabDirectory: String { directory + "/keytabs" }
    var scratchDirectory: String { directory + "/tmp" }
    var defaultCCache: String { "FILE:" + directory + "/ccache" }
    var defaultKeytab: String { "FILE:" + directory + "/krb5.keytab" }
    var defaultClientKeytab: String { "FILE:" + directory + "/client.keytab" }
    var ldapDirectory: String { directory + "/ldap" }
    var ldapServicePasswordFile: String { directory + "/ldap/service.keyfile" }

    /// Creates the directory skeleton.
    func createDirectories() throws {
        for path in [replayCacheDirectory, ccacheDirectory, keytabDirectory, scratchDirectory] {
            do {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
            } catch {
                throw TestRealmError.fileSystem(path: path, reason: "\(error)")
            }
        }
    }

    /// The environment every child program (and, for ``TestRealm/shared()``, this process) uses.
    var environment: [String: String] {
        [
            "KRB5_CONFIG": krb5Config,
            "KRB5_KDC_PROFILE": kdcConfig,
            "KRB5RCACHEDIR": replayCacheDirectory,
            "KRB5CCNAME": defaultCCache,
            "KRB5_KTNAME": defaultKeytab,
            "KRB5_CLIENT_KTNAME": defaultClientKeytab,
        ]
    }

    /// krb5.conf: client side. No DNS, loopback KDCs, domain mapping, optional LDAP module.
    func krb5ConfText(_ configuration: TestRealm.Configuration, kdcPort: UInt16,
                      extraRealmPorts: [String: UInt16], ldap: LDAPSettings?, kdcHost: String = "127.0.0.1") -> String {
        let realm = configuration.name
        let enctypes = configuration.encryptionTypes.joined(separator: " ")
        var text = """
        # Written by TestRealm; read only through KRB5_CONFIG.
        [libdefaults]
         default_realm = \(realm)
         dns_lookup_kdc = false
         dns_lookup_realm = false
         dns_canonicalize_hostname = false
         rdns = false
         forwardable = true
         udp_preference_limit = 1
         kdc_timeout = 2s
         max_retries = 1
         ticket_lifetime = \(PrincipalAttributes.deltat(configuration.maxTicketLifetime))
         renew_lifetime = \(PrincipalAttributes.deltat(configuration.maxRenewableLifetime))
         default_tkt_enctypes = \(enctypes)
         default_tgs_enctypes = \(enctypes)
         permitted_enctypes = \(enctypes)
         default_ccache_name = \(defaultCCache)
         default_keytab_name = \(defaultKeytab)
         default_client_keytab_name = \(defaultClientKeytab)

        [realms]
         \(realm) = {
          kdc = \(kdcHost):\(kdcPort)

        """
        if ldap != nil { text += "  database_module = ldapdb\n" }
        text += " }\n"
        text += otherRealms(configuration, extraRealmPorts: extraRealmPorts)
        text += domainRealm(configuration)
        if let ldap { text += dbModules(ldap, replicated: configuration.replicated) }
        text += "\n[logging]\n default = FILE:\(libraryLog)\n"
        return text
    }

    /// krb5.conf's `[realms]` entries of the trusted realms (`extraRealms`, TCP) and of other TestRealms (`knownRealms`).
    private func otherRealms(_ configuration: TestRealm.Configuration, extraRealmPorts: [String: UInt16]) -> String {
        var text = ""
        for extra in configuration.extraRealms {
            let port = extraRealmPorts[extra] ?? 1
            text += " \(extra) = {\n  kdc = tcp/127.0.0.1:\(port)\n }\n"
        }
        for known in configuration.knownRealms {
            text += " \(known.name) = {\n  kdc = 127.0.0.1:\(known.kdcPort)\n }\n"
        }
        return text
    }

    /// krb5.conf's `[domain_realm]`: the realm's domains, each extra realm's lower-cased name, the known realms' domains.
    private func domainRealm(_ configuration: TestRealm.Configuration) -> String {
        let realm = configuration.name
        var text = "\n[domain_realm]\n"
        for domain in configuration.domains {
            text += " .\(domain) = \(realm)\n \(domain) = \(realm)\n"
        }
        for extra in configuration.extraRealms {
            let domain = extra.lowercased()
            text += " .\(domain) = \(extra)\n \(domain) = \(extra)\n"
        }
        for known in configuration.knownRealms {
            for domain in known.domains {
                text += " .\(domain) = \(known.name)\n \(domain) = \(known.name)\n"
            }
        }
        return text
    }

    /// krb5.conf's `[dbmodules]` for the LDAP back end (lockout and last-success writes off on replicated slapds).
    private func dbModules(_ ldap: LDAPSettings, replicated: Bool) -> String {
        """

        [dbmodules]
         ldapdb = {
          db_library = kldap
          ldap_kerberos_container_dn = \(ldap.containerDN)
          ldap_kdc_dn = \(ldap.rootDN)
          ldap_kadmind_dn = \(ldap.rootDN)
          ldap_service_password_file = \(ldapServicePasswordFile)
          ldap_servers = \(ldap.uri)
          ldap_conns_per_server = 2
        \(replicated ? "  disable_last_success = true\n  disable_lockout = true\n" : "") }

        """
    }

    /// kdc.conf: KDC side. Loopback listeners on `kdcPort`, database, lifetimes, logs.
    func kdcConfText(_ configuration: TestRealm.Configuration, kdcPort: UInt16, ldap: LDAPSettings?,
                     kdcHost: String = "127.0.0.1") -> String {
        let realm = configuration.name
        let keysalts = configuration.encryptionTypes.map { $0 + ":normal" }.joined(separator: " ")
        var text = """
        # Written by TestRealm; read only through KRB5_KDC_PROFILE.
        [kdcdefaults]
         kdc_listen = \(kdcHost):\(kdcPort)
         kdc_tcp_listen = \(kdcHost):\(kdcPort)

        [realms]
         \(realm) = {
          kdc_listen = \(kdcHost):\(kdcPort)
          kdc_tcp_listen = \(kdcHost):\(kdcPort)

        """
        if ldap == nil {
            text += "  database_name = \(database)\n"
        } else {
            text += "  database_module = ldapdb\n"
        }
        text += """
          key_stash_file = \(stash)
          acl_file = \(aclFile)
          max_life = \(PrincipalAttributes.deltat(configuration.maxTicketLifetime))
          max_renewable_life = \(PrincipalAttributes.deltat(configuration.maxRenewableLifetime))
          supported_enctypes = \(keysalts)
          master_key_type = \(configuration.encryptionTypes.first ?? "aes256-cts-hmac-sha1-96")
         }

        [logging]
         kdc = FILE:\(kdcLog)
         admin_server = FILE:\(directory)/kadmind.log
         default = FILE:\(libraryLog)

        """
        return text
    }
}
