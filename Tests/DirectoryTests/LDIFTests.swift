import Directory
import Foundation
import Testing
import WindowsStatus

@Suite("LDIF import and export")
struct LDIFTests {
    static let fixturePath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/ldif/contoso.ldif").path

    static func fixture() throws -> String { try String(contentsOfFile: fixturePath, encoding: .utf8) }

    @Test("The contoso fixture imports with domains, DCs, trusts, delegation and nested groups")
    func fixtureImport() throws {
        let d = try Directory.importLDIF(Self.fixture(), file: "contoso.ldif")
        #expect(d.domainOrder == ["contoso.com", "fabrikam.com"])
        #expect(d.domain("contoso.com")?.domain.netBIOSName == "CONTOSO")
        #expect(d.domain("contoso.com")?.controllerOrder == ["dc01", "dc02"])
        #expect(d.domainOfController("FAB-DC01") == "fabrikam.com")
        #expect(d.trusts("contoso.com", "fabrikam.com") && d.trusts("fabrikam.com", "contoso.com"))

        let ts02 = try #require(d.computer("TestServer02", on: "DC02"))
        #expect(ts02.delegation == .constrainedKerberosOnly)
        #expect(ts02.allowedToDelegateTo.first == "Microsoft Virtual System Migration Service/TestServer01.contoso.com",
                "folded lines are joined")
        #expect(d.computer("TestServer01")?.delegation == DelegationKind.none)
        #expect(d.computer("DC01")?.isDomainController == true)
        #expect(d.computer("ADMIN-WS01")?.operatingSystem == "Windows 8.1 Enterprise")

        let carol = try #require(d.user(PrincipalRef(domain: "contoso.com", name: "carol")))
        #expect(carol.sensitive)
        let dave = PrincipalRef(domain: "contoso.com", name: "dave")
        #expect(d.user(dave)?.distinguishedName == "CN=Jones\\, Dave,CN=Users,DC=contoso,DC=com")
        #expect(d.cannotBeDelegated(dave))
        #expect(d.isMember(dave, of: PrincipalRef(domain: "contoso.com", name: "Hyper-V Operators")), "through Hyper-V Tier2")
        #expect(d.isDomainAdmin(PrincipalRef(domain: "contoso.com", name: "alice"), of: "contoso.com"))
    }

    @Test("Export then import gives the same directory; export is a fixpoint")
    func roundTrip() throws {
        let d = try Directory.importLDIF(Self.fixture(), file: "contoso.ldif")
        let text = d.exportLDIF()
        let again = try Directory.importLDIF(text, file: "export.ldif")
        #expect(again.domainOrder == d.domainOrder)
        #expect(Set(again.trusts) == Set(d.trusts))
        for key in d.domainOrder {
            let a = try #require(d.domains[key]), b = try #require(again.domains[key])
            #expect(a.domain == b.domain)
            #expect(a.controllerOrder == b.controllerOrder)
            #expect(a.replica()?.computers == b.replica()?.computers)
            #expect(a.replica()?.users == b.replica()?.users)
            #expect(a.replica()?.groups == b.replica()?.groups)
        }
        #expect(again.exportLDIF() == text)
        #expect(text.contains("cn:: Q2Fyb2wgTcO8bGxlcg=="), "non-ASCII values are base64")
        #expect(!text.split(separator: "\n").contains { $0.utf8.count > 76 && !$0.hasPrefix("#") }, "lines are folded")
    }

    @Test("Syntax: comments, folding, base64, version, CRLF, DN escapes")
    func syntax() throws {
        let text = "version: 1\r\n# a comment\r\n#  folded comment\r\n" +
            "dn: CN=Smith\\, John,CN=Users,\r\n DC=example,DC=com\r\nobjectClass: user\r\nsAMAccountName:: am9obg==\r\n" +
            "description: long\r\n  value\r\n\r\n"
        let records = try LDIF.parse(text, file: "t.ldif")
        #expect(records.count == 1)
        #expect(records[0].dn == "CN=Smith\\, John,CN=Users,DC=example,DC=com")
        #expect(records[0].first("sAMAccountName")?.value == "john")
        #expect(records[0].first("description")?.value == "long value")
        #expect(records[0].first("description")?.line == 8)
        let dn = try #require(DistinguishedName(records[0].dn))
        #expect(dn.name == "Smith, John")
        #expect(dn.domainDNSName == "example.com")
        #expect(DistinguishedName.escape("#a, b ") == "\\#a\\, b\\ ")
    }

    @Test("Malformed LDIF: errors name the file, line and attribute")
    func malformed() throws {
        func failure(_ text: String) -> DirectoryError? {
            do { _ = try Directory.importLDIF(text, file: "bad.ldif"); return nil } catch { return error }
        }
        var e = try #require(failure("version: 1\n\ndn: DC=x,DC=com\nobjectClass: domainDNS\nno colon here\n"))
        #expect(e.file == "bad.ldif")
        #expect(e.line == 5)

        e = try #require(failure("dn: CN=a,DC=x,DC=com\nobjectClass: user\nsAMAccountName:: !!!notbase64\n"))
        #expect(e.line == 3)
        #expect(e.attribute == "sAMAccountName")

        e = try #require(failure("sAMAccountName: orphan\n"))
        #expect(e.line == 1)

        e = try #require(failure(" continuation first\n"))
        #expect(e.line == 1)

        let fixture = try Self.fixture()
        e = try #require(failure(fixture.replacingOccurrences(of: "member: CN=Bob Brown,CN=Users,DC=contoso,DC=com",
                                                              with: "member: CN=Nobody,CN=Users,DC=contoso,DC=com")))
        #expect(e.attribute == "member")
        #expect(e.status == .dsNoSuchObject)
        let lineOfNobody = fixture.replacingOccurrences(of: "member: CN=Bob Brown,CN=Users,DC=contoso,DC=com", with: "member: CN=Nobody,CN=Users,DC=contoso,DC=com")
            .split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.contains("CN=Nobody") }.map { $0 + 1 }
        #expect(e.line == lineOfNobody)

        e = try #require(failure(fixture.replacingOccurrences(of: "userAccountControl: 4096\ndNSHostName: TestServer03",
                                                              with: "userAccountControl: lots\ndNSHostName: TestServer03")))
        #expect(e.attribute == "userAccountControl")

        // A duplicate SPN in the file.
        e = try #require(failure(fixture.replacingOccurrences(of: "servicePrincipalName: HOST/TestServer03.contoso.com",
                                                              with: "servicePrincipalName: HOST/TestServer01.contoso.com")))
        #expect(e.status == .dsSPNNotUniqueInForest)
        #expect(e.attribute == "servicePrincipalName")

        e = try #require(failure("dn: CN=U,CN=Users,DC=x,DC=com\nobjectClass: user\nsAMAccountName: u\n"))
        #expect(e.message.contains("no domain controller"))
    }
}
