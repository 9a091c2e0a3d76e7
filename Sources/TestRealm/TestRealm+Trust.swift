import Foundation

extension TestRealm {
    /// Sets up a cross-realm trust the MIT way: `krbtgt/<other>@<self>` in both KDCs with one key
    /// (a random password, the same salt since the principal name is the same), so users of this
    /// realm can get tickets for `other`'s services; with `twoWay`, also `krbtgt/<self>@<other>`.
    /// Clients also need a krb5.conf that lists both KDCs (``trustConfiguration(realms:capaths:)``).
    public func trust(_ other: TestRealm, twoWay: Bool) async throws {
        var pairs = [(name, other.name)]
        if twoWay { pairs.append((other.name, name)) }
        for (from, to) in pairs {
            let principal = "krbtgt/\(to)@\(from)"
            let password = UUID().uuidString + UUID().uuidString
            try await addPrincipal(principal, password: password)
            try await other.addPrincipal(principal, password: password)
        }
    }

    /// A client krb5.conf for several realms: each realm's KDC, its domains in `[domain_realm]`,
    /// and `[capaths]` with a direct path (`.`) for each pair in `capaths` (`(from, to)`). The first
    /// realm is the default. `kdcs` names another KDC (`address:port`, say a ``RealmReplica``'s) for a
    /// realm: a host whose logon DC is that replica. Write it to a file and give it as `KRB5_CONFIG`.
    public static func trustConfiguration(realms: [TestRealm], capaths: [(String, String)],
                                          kdcs: [String: String] = [:]) -> String {
        var text = """
            # Written by TestRealm: several realms and the paths between them.
            [libdefaults]
             default_realm = \(realms.first?.name ?? "")
             dns_lookup_kdc = false
             dns_lookup_realm = false
             dns_canonicalize_hostname = false
             rdns = false
             forwardable = true
             udp_preference_limit = 1
             kdc_timeout = 2s
             max_retries = 1

            [realms]

            """
        for realm in realms {
            text += " \(realm.name) = {\n  kdc = \(kdcs[realm.name] ?? "127.0.0.1:\(realm.kdcPort)")\n }\n"
        }
        text += "\n[domain_realm]\n"
        for realm in realms {
            for domain in realm.configuration.domains { text += " .\(domain) = \(realm.name)\n \(domain) = \(realm.name)\n" }
        }
        text += "\n[capaths]\n"
        for from in Set(capaths.map(\.0)).sorted() {
            text += " \(from) = {\n"
            for (f, to) in capaths where f == from { text += "  \(to) = .\n" }
            text += " }\n"
        }
        return text
    }

    /// Runs a program with this realm's environment and `KRB5_CONFIG` replaced (e.g. by a trust configuration).
    @discardableResult
    public nonisolated func run(_ executable: String, _ arguments: [String], krb5Config: String,
                                check: Bool = true) async throws -> CommandResult {
        try await runner.run(executable, arguments, check: check, extraEnvironment: ["KRB5_CONFIG": krb5Config])
    }
}
