import Directory
import Testing
import WindowsStatus

/// Found by `FuzzLDIF` (docs/fuzzing.md): two objects with one sAMAccountName in a domain — a DC (by its
/// `OU=Domain Controllers` container) and a member server — were both accepted, the second silently replaced the
/// first, and the directory's export no longer imported ("Domain … has no domain controller").
@Suite("LDIF: one sAMAccountName per domain")
struct LDIFDuplicateAccountTests {
    static func text(secondName: String, secondDomain: String = "DC=example,DC=com") -> String {
        """
        version: 1

        dn: DC=example,DC=com
        objectClass: domainDNS

        dn: CN=DC1,OU=Domain Controllers,DC=example,DC=com
        objectClass: computer
        sAMAccountName: Server1$
        userAccountControl: 4096

        dn: CN=Server1,CN=Computers,\(secondDomain)
        objectClass: computer
        sAMAccountName: \(secondName)
        userAccountControl: 4096

        """
    }

    @Test("a second object with the same sAMAccountName (any case) is refused, naming both lines")
    func duplicateRefused() throws {
        for name in ["Server1$", "SERVER1$"] {
            let e: DirectoryError
            do {
                _ = try Directory.importLDIF(Self.text(secondName: name), file: "dup.ldif")
                Issue.record("\(name) was accepted")
                continue
            } catch {
                e = error
            }
            #expect(e.status == .alreadyExists)
            #expect(e.file == "dup.ldif" && e.line == 13 && e.attribute == "sAMAccountName", "\(e)")
            #expect(e.message == "sAMAccountName '\(name)' is used twice in example.com (lines 8 and 13): account names are unique in a domain",
                    "\(e)")
        }
    }

    @Test("distinct names import, and the export imports again with its domain controller")
    func distinctNamesRoundTrip() throws {
        let directory = try Directory.importLDIF(Self.text(secondName: "Server2$"), file: "ok.ldif")
        let again = try Directory.importLDIF(directory.exportLDIF(), file: "export.ldif")
        #expect(again.exportLDIF() == directory.exportLDIF())
    }
}
