import Foundation
import MigrationService
import TestRealm

/// What the migration-service benchmarks share: a throwaway realm whose environment this process uses, a
/// destination's migration service key and a signed-on user.
struct BenchRealm {
    /// The destination's FQDN (its SPN is the migration service's on it).
    static let fqdn = "hostb.test"
    static let user = "bench"
    static let password = "bench-password"

    let realm: TestRealm
    /// The keytab with the destination's migration service key.
    let keytab: String
    /// A ccache holding the user's TGT.
    let ccache: String

    /// Makes the process use `realm` (its krb5.conf, no system files), adds the principals and signs the user on.
    static func prepare(_ realm: TestRealm) async throws -> BenchRealm {
        for (key, value) in realm.environment { setenv(key, value, 1) }
        let spn = MigrationServiceNames.migrationPrincipal(fqdn: fqdn, realm: nil)
        try await realm.addPrincipal(spn)
        let keytab = try await realm.exportKeytab([spn])
        try await realm.addPrincipal(user, password: password)
        let ccache = try await realm.kinit(user, password: password)
        return BenchRealm(realm: realm, keytab: keytab, ccache: ccache)
    }

    /// The destination's configuration (TestServer02, any network, the user allowed) with VMs in `vmDirectory`.
    func destinationConfiguration(vmDirectory: String, maximumMigrations: Int = 4) -> DestinationConfiguration {
        DestinationConfiguration(hostName: "TestServer02", fqdn: Self.fqdn, realm: realm.name, keytab: keytab,
                                 vmDirectory: vmDirectory, allowedUsers: [Self.user], useAnyNetwork: true,
                                 maximumMigrations: maximumMigrations)
    }
}
