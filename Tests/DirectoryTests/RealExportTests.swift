import Directory
import Foundation
import Testing
import WindowsStatus

/// Exports as real tools write them: Samba's `ldbsearch` (a committed capture of a real DC),
/// `ldapsearch -LLL` (search references, base64 SIDs and GUIDs) and `ldifde -f` (`changetype: add`).
@Suite("LDIF from real exports")
struct RealExportTests {
    static let sambaPath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/ldif/samba-contoso-ldbsearch.ldif").path

    static func samba() throws -> String { try String(contentsOfFile: sambaPath, encoding: .utf8) }

    @Test("A Samba AD DC's ldbsearch export imports: referral skipped with a note, binary values kept")
    func sambaExport() throws {
        let text = try Self.samba()
        let result = try Directory.importLDIFWithNotes(text, file: "samba.ldif")
        let d = result.directory
        #expect(d.domainOrder == ["contoso.com"])
        #expect(d.domain("contoso.com")?.controllerOrder == ["dc01"])
        let refLine = try #require(text.split(separator: "\n", omittingEmptySubsequences: false)
            .firstIndex { $0.hasPrefix("ref: ") }.map { $0 + 1 })
        #expect(result.notes.contains { $0.line == refLine && $0.message.contains("search reference ldap:///CN=Configuration,DC=contoso,DC=com") },
                "notes: \(result.notes)")
        #expect(result.notes.contains { $0.message.contains("the model does not read") && $0.message.contains("container") })

        let ts02 = try #require(d.computer("TestServer02"))
        #expect(ts02.delegation == .constrainedAnyProtocol)
        #expect(Set(ts02.allowedToDelegateTo) == ["Microsoft Virtual System Migration Service/TestServer01.contoso.com",
                                                  "Microsoft Virtual System Migration Service/TestServer01"])
        #expect(ts02.operatingSystem == "Windows Server 2012 Datacenter")
        #expect(d.computer("TestServer01")?.delegation == DelegationKind.none)
        let dave = PrincipalRef(domain: "contoso.com", name: "dave")
        #expect(d.user(dave)?.distinguishedName == "CN=Jones\\, Dave,CN=Users,DC=contoso,DC=com")
        #expect(d.cannotBeDelegated(dave), "Protected Users through Hyper-V Tier2")
        #expect(d.user(PrincipalRef(domain: "contoso.com", name: "carol"))?.sensitive == true)
        #expect(d.isDomainAdmin(PrincipalRef(domain: "contoso.com", name: "alice"), of: "contoso.com"))
    }

    @Test("Import, export, import of the Samba export gives the same directory")
    func sambaRoundTrip() throws {
        let d = try Directory.importLDIF(Self.samba(), file: "samba.ldif")
        let text = d.exportLDIF()
        let again = try Directory.importLDIF(text, file: "export.ldif")
        #expect(again.domainOrder == d.domainOrder)
        for key in d.domainOrder {
            let a = try #require(d.domains[key]), b = try #require(again.domains[key])
            #expect(a.controllerOrder == b.controllerOrder)
            #expect(a.replica()?.computers == b.replica()?.computers)
            #expect(a.replica()?.users == b.replica()?.users)
            #expect(a.replica()?.groups == b.replica()?.groups)
        }
        #expect(again.exportLDIF() == text)
    }

    /// `ldapsearch -LLL -o ldif-wrap=76` of an AD: base64 SIDs and GUIDs, a base64 DN, folded
    /// lines, search references at the end (as AD returns them for the other partitions).
    static let ldapsearch = """
        dn: DC=contoso,DC=com
        objectClass: top
        objectClass: domain
        objectClass: domainDNS
        objectSid:: AQQAAAAAAAUVAAAAMAHTCIy/lk9W9dIc

        dn: CN=DC01,OU=Domain Controllers,DC=contoso,DC=com
        objectClass: computer
        sAMAccountName: DC01$
        userAccountControl: 532480
        objectGUID:: i7J1fWfJh02p2lmYjkLU4Q==
        objectSid:: AQUAAAAAAAUVAAAAMAHTCIy/lk9W9dIc6AMAAA==
        logonHours:: ////////////////////////////

        dn: CN=HV01,CN=Computers,DC=contoso,DC=com
        objectClass: computer
        sAMAccountName: HV01$
        userAccountControl: 4096
        servicePrincipalName: Microsoft Virtual System Migration Service/HV01.contoso.c
         om

        dn:: Q049TcO8bGxlclwsIEthcmwsQ049VXNlcnMsREM9Y29udG9zbyxEQz1jb20=
        objectClass: user
        sAMAccountName: karl

        dn: CN=A Contact,CN=Users,DC=contoso,DC=com
        objectClass: top
        objectClass: person
        objectClass: organizationalPerson
        objectClass: contact
        cn: A Contact

        dn: CN=Ops,CN=Users,DC=contoso,DC=com
        objectClass: group
        sAMAccountName: Ops
        member:: Q049TcO8bGxlclwsIEthcmwsQ049VXNlcnMsREM9Y29udG9zbyxEQz1jb20=
        member: CN=A Contact,CN=Users,DC=contoso,DC=com

        # search reference
        ref: ldap://ForestDnsZones.contoso.com/DC=ForestDnsZones,DC=contoso,DC=com

        ref: ldap://contoso.com/CN=Configuration,DC=contoso,DC=com

        """

    @Test("ldapsearch -LLL: base64 SIDs, GUIDs, binaries, DNs; contacts and references skipped with notes")
    func ldapsearchExport() throws {
        let records = try LDIF.parse(Self.ldapsearch, file: "ad.ldif")
        let dc = try #require(records.first { $0.dn.hasPrefix("CN=DC01") })
        #expect(dc.first("objectGUID")?.value == "7d75b28b-c967-4d87-a9da-59988e42d4e1")
        #expect(dc.first("objectSid")?.value == "S-1-5-21-148046128-1335279500-483587414-1000")
        #expect(dc.first("logonHours")?.binary == true)
        #expect(records.contains { $0.dn == "CN=Müller\\, Karl,CN=Users,DC=contoso,DC=com" })

        let result = try Directory.importLDIFWithNotes(Self.ldapsearch, file: "ad.ldif")
        #expect(result.notes.filter { $0.message.contains("search reference") }.map(\.line) == [40, 42])
        #expect(result.notes.contains { $0.line == 26 && $0.message.contains("contact") })
        let ops = try #require(result.directory.group(PrincipalRef(domain: "contoso.com", name: "Ops")))
        #expect(ops.members == [PrincipalRef(domain: "contoso.com", name: "karl")])
        #expect(result.directory.computer("HV01")?.servicePrincipalNames == ["Microsoft Virtual System Migration Service/HV01.contoso.com"])
        // Binary values survive a write and read.
        let written = LDIF.write([dc])
        #expect(written.contains("logonHours:: ////////////////////////////"))
        let reread = try #require(try LDIF.parse(written).first?.first("logonHours"))
        #expect(reread.value == "////////////////////////////" && reread.binary)
    }

    @Test("ldifde -f: changetype add, hex-escaped DNs, a non-UTF-8 DN is an error naming the line")
    func ldifdeExport() throws {
        let text = """
            dn: DC=contoso,DC=com
            changetype: add
            objectClass: domainDNS

            dn: CN=DC01,OU=Domain Controllers,DC=contoso,DC=com
            changetype: add
            objectClass: computer
            sAMAccountName: DC01$
            userAccountControl: 532480

            dn: CN=Smith\\2C Ann,CN=Users,DC=contoso,DC=com
            changetype: add
            objectClass: user
            sAMAccountName: ann

            dn: CN=Admins,CN=Users,DC=contoso,DC=com
            changetype: add
            objectClass: group
            sAMAccountName: Admins
            member: CN=Smith\\, Ann,CN=Users,DC=contoso,DC=com

            """
        let d = try Directory.importLDIF(text, file: "ldifde.ldif")
        #expect(d.group(PrincipalRef(domain: "contoso.com", name: "Admins"))?.members == [PrincipalRef(domain: "contoso.com", name: "ann")])
        do {
            _ = try LDIF.parse("dn: DC=x,DC=com\n\ndn:: /w==\nobjectClass: user\n", file: "bad.ldif")
            Issue.record("a DN that is not UTF-8 must be refused")
        } catch {
            #expect(error.line == 3 && error.file == "bad.ldif")
        }
        do {
            _ = try LDIF.parse("dn: DC=x,DC=com\nchangetype: modify\n", file: "bad.ldif")
            Issue.record("changetype modify must be refused")
        } catch {
            #expect(error.line == 2 && error.attribute == "changetype")
        }
    }
}
