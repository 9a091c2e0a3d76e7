import LDIFFormat
import Testing

@Suite("LDIFReader: RFC 2849 syntax without a schema")
struct LDIFReaderTests {
    /// What `ldapsearch -LLL` prints for a principal's entry (TestRealm's query), folded and base64 included.
    static let search = """
        dn: krbPrincipalName=host/a.test@A.TEST,cn=A.TEST,cn=krbContainer,dc=testrealm
        krbAllowedToDelegateTo: cifs/b.test
        krbAllowedToDelegateTo:: TWljcm9zb2Z0IFZpcnR1YWwgU3lzdGVtIE1pZ3JhdGlvbiBTZXJ2aWNlL2IudGVzdA==
        description: a long value that
         continues here

        # refldap://elsewhere
        dn: cn=second,dc=testrealm
        objectClass: top

        """

    @Test("records, folded lines, base64 text, comments; names looked up case-insensitively")
    func readsASearch() throws {
        let document = try LDIFReader.read(Self.search, file: "search")
        #expect(document.records.count == 2)
        let first = try #require(document.records.first)
        #expect(first.dn == "krbPrincipalName=host/a.test@A.TEST,cn=A.TEST,cn=krbContainer,dc=testrealm")
        #expect(first.all("KRBALLOWEDTODELEGATETO").map(\.value)
                == ["cifs/b.test", "Microsoft Virtual System Migration Service/b.test"])
        #expect(first.first("description")?.value == "a long value thatcontinues here")
        #expect(first.first("description")?.line == 4)
        #expect(document.records[1].first("objectclass")?.value == "top")
    }

    @Test("without options a non-UTF-8 base64 value stays base64 and is marked binary; with them it is the caller's text form")
    func binaryValues() throws {
        let raw = "dn: cn=x\nphoto:: /9j/\n"
        let photo = try #require(try LDIFReader.read(raw).records.first?.first("photo"))
        #expect(photo.binary && photo.value == "/9j/")
        let options = LDIFReader.Options(binaryValue: { key, bytes in key == "photo" ? "\(bytes.count) bytes" : nil })
        let converted = try #require(try LDIFReader.read(raw, options: options).records.first?.first("photo"))
        #expect(converted.value == "3 bytes" && !converted.binary)
    }

    @Test("errors name the file, line and attribute; the DN check is the caller's")
    func errors() throws {
        #expect(throws: LDIFError(message: "Attribute 'cn' before any 'dn:' line", file: "f", line: 1, attribute: "cn")) {
            try LDIFReader.read("cn: x\n", file: "f")
        }
        #expect(throws: LDIFError(message: "Continuation line without a line to continue", file: "f", line: 1)) {
            try LDIFReader.read(" x\n", file: "f")
        }
        #expect(try LDIFReader.read("dn: not a dn\n").records.first?.dn == "not a dn")
        let strict = LDIFReader.Options(isValidDN: { $0.contains("=") })
        #expect(throws: LDIFError(message: "Malformed DN 'not a dn'", file: "<ldif>", line: 1, attribute: "dn")) {
            try LDIFReader.read("dn: not a dn\n", options: strict)
        }
    }

    @Test("the writer's output reads back as the same records")
    func roundTrip() throws {
        let records = try LDIFReader.read(Self.search).records
        let again = try LDIFReader.read(LDIFWriter.write(records))
        #expect(again.records.map(\.dn) == records.map(\.dn))
        #expect(again.records.map { $0.values.map(\.value) } == records.map { $0.values.map(\.value) })
    }
}
