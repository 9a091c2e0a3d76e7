import Foundation

extension TestRealm {
    /// How to build a realm. Every field has a test-friendly default.
    public struct Configuration: Sendable, Hashable {
        /// Realm name (upper case by convention).
        public var name: String
        /// Principal store of the KDC.
        public var backend: KDCBackend
        /// DNS domains mapped to this realm in `[domain_realm]` (`"test"` maps `hosta.test`).
        public var domains: [String]
        /// More realm names written into krb5.conf whose KDC is a loopback port that refuses
        /// connections, to provoke "KDC unreachable". Each also gets the domain `lowercased(name)`.
        public var extraRealms: [String]
        /// Other running realms (e.g. another ``TestRealm``) to list in this krb5.conf, so programs
        /// using this realm's environment also reach their KDCs (no cross-realm trust is set up).
        public var knownRealms: [KnownRealm]
        /// Realm-wide ticket lifetime cap (`max_life`, and the krbtgt's maximum).
        public var maxTicketLifetime: Duration
        /// Realm-wide renewable lifetime cap (`max_renewable_life`); zero disables renewal.
        public var maxRenewableLifetime: Duration
        /// Enctypes for keys (`supported_enctypes`) and tickets.
        public var encryptionTypes: [String]
        /// Parent of the temporary realm directory (default: the system temp directory).
        public var parentDirectory: String?
        /// Keep the directory after `shutdown()` (for debugging).
        public var keepDirectory: Bool
        /// How long to wait for `krb5kdc` (and `slapd`) to answer.
        public var startTimeout: Duration
        /// Write `KRB5_TRACE` output of every child program to `trace.log` in the directory.
        public var trace: Bool
        /// LDAP back end only: the realm's slapd takes part in replication (`serverID 1`, syncprov)
        /// so ``RealmReplica``s — more domain controllers — can pull from it and it from them, and
        /// every KDC of the realm leaves the directory unwritten (`disable_last_success`,
        /// `disable_lockout`). See docs/test-realm.md.
        public var replicated: Bool = false

        public init(name: String = "MIGRATION.TEST", backend: KDCBackend = .db2,
                    domains: [String] = ["test"], extraRealms: [String] = [], knownRealms: [KnownRealm] = [],
                    maxTicketLifetime: Duration = .seconds(24 * 3600),
                    maxRenewableLifetime: Duration = .seconds(7 * 24 * 3600),
                    encryptionTypes: [String] = ["aes256-cts-hmac-sha1-96", "aes128-cts-hmac-sha1-96", "aes256-cts-hmac-sha384-192", "aes128-cts-hmac-sha256-128"],
                    parentDirectory: String? = nil, keepDirectory: Bool = false,
                    startTimeout: Duration = .seconds(15), trace: Bool = false) {
            self.name = name
            self.backend = backend
            self.domains = domains
            self.extraRealms = extraRealms
            self.knownRealms = knownRealms
            self.maxTicketLifetime = maxTicketLifetime
            self.maxRenewableLifetime = maxRenewableLifetime
            self.encryptionTypes = encryptionTypes
            self.parentDirectory = parentDirectory
            self.keepDirectory = keepDirectory
            self.startTimeout = startTimeout
            self.trace = trace
        }

        /// A realm served by a KDC on 127.0.0.1:`kdcPort`, mapped from `domains`.
        public struct KnownRealm: Sendable, Hashable {
            public var name: String
            public var kdcPort: UInt16
            public var domains: [String]

            public init(name: String, kdcPort: UInt16, domains: [String] = []) {
                self.name = name
                self.kdcPort = kdcPort
                self.domains = domains
            }

            /// `realm`'s name, port and the domains of its configuration.
            public init(_ realm: TestRealm) {
                self.init(name: realm.name, kdcPort: realm.kdcPort, domains: realm.configuration.domains)
            }
        }

        /// The configuration of ``TestRealm/shared()``: realm `MIGRATION.TEST` (domain `.test`),
        /// DB2, and the unreachable extra realm `UNREACHABLE.TEST` (domain `.unreachable.test`).
        public static let shared = Configuration(extraRealms: ["UNREACHABLE.TEST"])

        func validate() throws {
            let realmCharacters = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-_")
            for realm in [name] + extraRealms + knownRealms.map(\.name) {
                guard !realm.isEmpty, realm.unicodeScalars.allSatisfy(realmCharacters.contains) else {
                    throw TestRealmError.invalidArgument("realm name \"\(realm)\" (use letters, digits, . - _)")
                }
            }
            for domain in domains + knownRealms.flatMap(\.domains) where domain.isEmpty || domain.unicodeScalars.contains(where: { !realmCharacters.contains($0) }) {
                throw TestRealmError.invalidArgument("domain \"\(domain)\"")
            }
        }
    }
}
