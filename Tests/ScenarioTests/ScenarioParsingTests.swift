import Foundation
import Hosts
import Scenario
import Testing

/// Bad input is refused with the file, line and field, before anything runs.
@Suite struct ScenarioParsingTests {
    static let base = """
        name: t
        directory:
          domains: [{name: contoso.com}]
          users: [{name: alice}]
        hosts:
          - name: TestServer01
            vms: [VM1]
            local-groups: {Administrators: [alice]}
            settings: {migration-enabled: true, use-any-network-for-migration: true}
          - name: TestServer02
            local-groups: {Administrators: [alice]}
            settings: {migration-enabled: true, use-any-network-for-migration: true}
        steps:

        """

    func error(_ yaml: String) -> ScenarioError? {
        do {
            _ = try Scenario(yaml: yaml, file: "test.yaml")
            return nil
        } catch {
            return error
        }
    }

    @Test func malformedYAMLNamesTheLine() throws {
        let yaml = "name: t\nhosts:\n  - name: [unclosed\nsteps: []\n"
        let e = try #require(error(yaml))
        #expect(e.file == "test.yaml")
        #expect(e.line == 4, "\(e)")
        #expect(e.message.contains("malformed YAML"))
    }

    @Test func badIndentationNamesTheLine() throws {
        let yaml = Self.base + "  - sign-on: {user: alice, host: TestServer01}\n   bad: indentation\n"
        let e = try #require(error(yaml))
        #expect(e.line == 15, "\(e)")
    }

    @Test func unknownKeyNamesLineAndField() throws {
        let yaml = Self.base + "  - move: {user: alice, vm: VM1, too: TestServer02}\n"
        let e = try #require(error(yaml))
        #expect(e.line == 14, "\(e)")
        #expect(e.field == "steps[0].move.too")
        #expect(e.message.contains("unknown key 'too'"))
        #expect(e.description.hasPrefix("test.yaml:14:"))
    }

    @Test func wrongTypeIsAnError() throws {
        let yaml = Self.base.replacingOccurrences(of: "migration-enabled: true, use", with: "migration-enabled: maybe, use")
        let e = try #require(error(yaml + "  - restart: TestServer01\n"))
        #expect(e.line == 9, "\(e)")
        #expect(e.field == "hosts[0].settings.migration-enabled")
        #expect(e.message.contains("true or false"))
    }

    @Test func unknownHostInAStepIsAnErrorAtItsLine() throws {
        let yaml = Self.base + "  - restart: TestServer01\n  - purge-tickets: TestServer09\n"
        let e = try #require(error(yaml))
        #expect(e.line == 15, "\(e)")
        #expect(e.message.contains("unknown host 'TestServer09'"))
    }

    @Test func unknownUserIsAnError() throws {
        let e = try #require(error(Self.base + "  - sign-on: {user: mallory, host: TestServer01}\n"))
        #expect(e.line == 14)
        #expect(e.message.contains("unknown user 'mallory'"))
    }

    @Test func contradictorySettingsAreErrors() throws {
        let os2012 = Self.base.replacingOccurrences(of: "  - name: TestServer02\n", with: "  - name: TestServer02\n    os: '2012'\n    settings: {performance-option: SMB}\n")
        #expect(error(os2012 + "  - restart: TestServer01\n") != nil)
        let ldifAndDomains = Self.base.replacingOccurrences(of: "directory:\n", with: "directory:\n  ldif: x.ldif\n")
        let e = try #require(error(ldifAndDomains))
        #expect(e.message.contains("cannot be combined with 'ldif'"))
        let vmTwice = Self.base.replacingOccurrences(of: "  - name: TestServer02\n", with: "  - name: TestServer02\n    vms: [VM1]\n")
        let e2 = try #require(error(vmTwice + "  - restart: TestServer01\n"))
        #expect(e2.message.contains("already on TestServer01"))
    }

    @Test func aMovesStepNeedsOneExpectationPerMove() throws {
        let yaml = Self.base + """
              - moves:
                  - {user: alice, vm: VM1, to: TestServer02}
                  - {user: alice, vm: VM1, to: TestServer02}
                expect: [success]

            """
        let e = try #require(error(yaml))
        #expect(e.message.contains("needs 2 expectations"))
    }

    @Test func unknownRuleIdsAreErrors() throws {
        let e = try #require(error(Self.base.replacingOccurrences(of: "name: t\n", with: "name: t\nrules: [A9]\n")))
        #expect(e.line == 2)
        #expect(e.message.contains("unknown rule 'A9'"))
    }
}

/// A scenario whose directory is an LDIF file: errors in the LDIF name that file and line.
@Suite struct ScenarioLDIFTests {
    @Test func ldifErrorsNameTheLDIFFileAndLine() throws {
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try "version: 1\n\ndn: DC=contoso,DC=com\nobjectClass: domainDNS\nthis line has no colon\n"
            .write(to: dir.appendingPathComponent("bad.ldif"), atomically: true, encoding: .utf8)
        let yaml = "name: x\ndirectory: {ldif: bad.ldif}\nhosts: []\nsteps: []\n"
        try yaml.write(to: dir.appendingPathComponent("s.yaml"), atomically: true, encoding: .utf8)
        do {
            _ = try Scenario.load(file: dir.appendingPathComponent("s.yaml").path)
            Issue.record("a broken LDIF file was accepted")
        } catch {
            #expect(error.file.hasSuffix("bad.ldif"), "\(error)")
            #expect(error.line == 5, "\(error)")
            #expect(error.description.contains("scenario") && error.description.contains("s.yaml:2"), "names the scenario too: \(error)")
        }
    }

    @Test func aMissingLDIFFileIsReportedAtTheScenarioLine() throws {
        let yaml = "name: x\ndirectory:\n  ldif: nowhere.ldif\nhosts: []\nsteps: []\n"
        do {
            _ = try Scenario(yaml: yaml, file: "s.yaml", baseDirectory: "/nonexistent")
            Issue.record("a missing LDIF file was accepted")
        } catch {
            #expect(error.file == "s.yaml")
            #expect(error.line == 3)
            #expect(error.field == "directory.ldif")
        }
    }

    @Test func theContosoExportBuildsTheHostsWorld() throws {
        let ldif = TestPaths.root.appendingPathComponent("Fixtures/ldif/contoso.ldif").path
        let env = try SimulatedEnvironment.fromLDIF(file: ldif)
        #expect(env.world.host("TestServer01")?.hypervisorInstalled == true)
        #expect(env.world.host("TestServer03")?.os == .ws2016)
        #expect(env.world.host("ADMIN-WS01")?.hypervisorInstalled == false)
    }
}

@Suite struct YAMLFeatureTests {
    @Test func anchorsAliasesAndMergeKeys() throws {
        let yaml = """
            name: aliases
            directory:
              domains: [{name: contoso.com}]
              users: [{name: alice}]
            hosts:
              - name: TestServer01
                vms: [VM1]
                local-groups: &groups {Administrators: [alice]}
                settings: &settings {migration-enabled: true, use-any-network-for-migration: true, maximum-virtual-machine-migrations: 3}
              - name: TestServer02
                local-groups: *groups
                settings:
                  <<: *settings
                  maximum-virtual-machine-migrations: 5
            steps:
              - sign-on: {user: alice, host: TestServer01}
              - move: {user: alice, vm: VM1, to: TestServer02}
                expect: {warnings: [S1]}
            """
        let scenario = try Scenario(yaml: yaml)
        #expect(scenario.world.host("TestServer02")?.migration.maximumMigrations == 5)
        #expect(scenario.world.host("TestServer02")?.migration.useAnyNetwork == true)
        #expect(scenario.run().passed)
    }

    @Test func aMergedUnknownKeyIsStillAnError() throws {
        let yaml = """
            name: x
            directory: {domains: [{name: contoso.com}]}
            hosts:
              - name: TestServer01
                settings:
                  <<: {migration-enabled: true, colour: blue}
            steps: []
            """
        do {
            _ = try Scenario(yaml: yaml)
            Issue.record("unknown merged key accepted")
        } catch {
            #expect(error.message.contains("unknown key 'colour'"))
            #expect(error.line == 6)
        }
    }
}
