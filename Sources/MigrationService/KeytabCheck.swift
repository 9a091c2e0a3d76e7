import Foundation
import GSS
import NIOPosix

extension HostConfiguration {
    /// Refuses to start a daemon whose keytab cannot serve it: the file must exist and hold keys for
    /// `Microsoft Virtual System Migration Service/<fqdn>` (migration listener) or `host/<fqdn>`
    /// (management listener). Acquiring an acceptor credential for each name checks it (MIT looks the
    /// principal up in the keytab); it runs on NIO's blocking thread pool, off the cooperative pool. Returns the
    /// problems of a keytab that holds only one of the two (that listener will refuse everyone), for the log.
    @discardableResult
    public func checkKeytab() async throws(MigrationServiceError) -> [String] {
        guard FileManager.default.isReadableFile(atPath: keytab) else {
            throw .configuration("The keytab \(keytab) does not exist or cannot be read: the daemon cannot authenticate anyone",
                                 stage: .destination)
        }
        let keytab = self.keytab
        let names = [MigrationServiceNames.migrationPrincipal(fqdn: fqdn, realm: realm),
                     MigrationServiceNames.hostPrincipal(fqdn: fqdn, realm: realm)]
        let check: @Sendable () -> [String] = {
            var problems: [String] = []
            for principal in names {
                do throws(GSSError) {
                    _ = try GSSCredential.acquire(name: GSSName(principal: principal), usage: .accept, mechanisms: [.kerberos],
                                                  store: GSSCredentialStore(keytab: keytab))
                } catch {
                    problems.append("The keytab \(keytab) has no usable key for \(principal): \(error.description)")
                }
            }
            return problems
        }
        let problems: [String]
        do {
            problems = try await NIOThreadPool.singleton.runIfActive(check)
        } catch {
            throw .configuration("The keytab \(keytab) could not be checked: \(error)", stage: .destination)
        }
        if problems.count == names.count {
            throw .configuration(problems.joined(separator: "; "), stage: .destination)
        }
        return problems
    }
}
