import Foundation
import GSS

extension HostConfiguration {
    /// Refuses to start a daemon whose keytab cannot serve it: the file must exist and hold keys for
    /// `Microsoft Virtual System Migration Service/<fqdn>` (migration listener) or `host/<fqdn>`
    /// (management listener). Acquiring an acceptor credential for each name checks it (MIT looks the
    /// principal up in the keytab); the file check runs on NIO's blocking pool and the acquisitions on GSS's,
    /// off the cooperative pool. Returns the problems of a keytab that holds only one of the two (that
    /// listener will refuse everyone), for the log.
    @discardableResult
    public func checkKeytab() async throws(MigrationServiceError) -> [String] {
        let keytab = self.keytab
        let readable = try await FileWork.run(.destination) { () throws(MigrationServiceError) in
            FileManager.default.isReadableFile(atPath: keytab)
        }
        guard readable else {
            throw .configuration("The keytab \(keytab) does not exist or cannot be read: the daemon cannot authenticate anyone",
                                 stage: .destination)
        }
        let names = [MigrationServiceNames.migrationPrincipal(fqdn: fqdn, realm: realm),
                     MigrationServiceNames.hostPrincipal(fqdn: fqdn, realm: realm)]
        var problems: [String] = []
        for principal in names {
            do throws(GSSError) {
                _ = try await GSSCredential.acquire(name: GSSName(principal: principal), usage: .accept, mechanisms: [.kerberos],
                                                    from: GSSCredentialStore(keytab: keytab))
            } catch {
                problems.append("The keytab \(keytab) has no usable key for \(principal): \(error.description)")
            }
        }
        if problems.count == names.count {
            throw .configuration(problems.joined(separator: "; "), stage: .destination)
        }
        return problems
    }
}
