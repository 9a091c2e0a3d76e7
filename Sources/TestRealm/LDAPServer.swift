import Foundation

/// The private OpenLDAP `slapd` behind an LDAP-backed realm.
final class LDAPServer: Sendable {
    let process: ChildProcess
    let settings: LDAPSettings

    init(process: ChildProcess, settings: LDAPSettings) {
        self.process = process
        self.settings = settings
    }

    static func start(files: RealmFiles, runner: CommandRunner, realmID: String,
                      timeout: Duration) async throws -> LDAPServer {
        throw TestRealmError.unsupportedByBackend(operation: "start (not yet implemented)", backend: .ldap)
    }

    func stop() async { await process.stop() }

    func setAllowedToDelegate(principal: String, realm: String, targets: [String]) async throws {
        throw TestRealmError.unsupportedByBackend(operation: "setAllowedToDelegate", backend: .ldap)
    }

    func allowedToDelegate(principal: String, realm: String) async throws -> [String] {
        throw TestRealmError.unsupportedByBackend(operation: "allowedToDelegate", backend: .ldap)
    }
}
