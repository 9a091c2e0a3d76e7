import ArgumentParser
import DirectoryLDAP
import MigrationRules
import Scenario

/// `--ldap URI` and `--ldap-base DN`: read the directory from a live AD over LDAP (SASL GSSAPI
/// with the user's Kerberos ticket; no password options on purpose).
struct LDAPOptions: ParsableArguments {
    @Option(help: "Read the directory from this live DC over LDAP (ldap://dc01.contoso.com), binding with SASL GSSAPI and your Kerberos ticket (kinit first).")
    var ldap: String?

    @Option(name: .customLong("ldap-base"), help: "With --ldap: the search base (default: the DC's defaultNamingContext).")
    var ldapBase: String?

    @Option(name: .customLong("ldap-page-size"), help: ArgumentHelp("With --ldap: entries per page of the paged search.", visibility: .hidden))
    var ldapPageSize: Int32 = 500

    func validate() throws {
        if ldapPageSize < 1 { throw ValidationError("--ldap-page-size must be at least 1") }
        if ldapBase != nil && ldap == nil { throw ValidationError("--ldap-base needs --ldap") }
    }

    /// The environment read from the DC (hosts for its computer accounts, as with --ldif), or nil
    /// without --ldap. Blocks the calling thread (the CLI's main thread) while it reads.
    func environment() throws -> SimulatedEnvironment? {
        guard let ldap else { return nil }
        let source = LDAPDirectorySource(uri: ldap, base: ldapBase, pageSize: ldapPageSize)
        do {
            var world = World(directory: try source.directoryBlocking())
            try world.addHostsForComputers()
            return SimulatedEnvironment(world: world, origin: ldap)
        } catch let error as LDAPError {
            throw CLIError("\(error)")
        } catch {
            throw CLIError("\(ldap): cannot create hosts: \(error)")
        }
    }
}
