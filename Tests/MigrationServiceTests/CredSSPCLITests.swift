import Foundation
@testable import MigrationService
import Testing
import TestRealm

/// `migauth migrate` reproducing the shells of rule A1: a CredSSP remote shell (`--sign-on credssp`), a Kerberos
/// one, and a console sign-on (`--from-config` with the password), against in-process daemons.
@Suite("migauth migrate with CredSSP sign-ons", .timeLimit(.minutes(3)))
struct CredSSPCLITests {
    @Test("--sign-on credssp moves; --sign-on kerberos prints the seed's 0x8009030E text; a wrong password prints 0x8009030C")
    func remoteShells() async throws {
        let s = try await CredSSPMoveTests.start()
        defer { s.lab.remove() }
        let bytes = try s.lab.createVM("vm-shell", size: 200_000)
        try s.lab.createVM("vm-kerb", size: 20_000)
        let passwordFile = s.lab.directory + "/password"
        try (s.lab.userPassword + "\n").write(toFile: passwordFile, atomically: true, encoding: .utf8)
        let wrongFile = s.lab.directory + "/wrong"
        try "not-it\n".write(toFile: wrongFile, atomically: true, encoding: .utf8)
        let management = try #require(s.server01.management.endpoint)
        let endpoint02 = try s.migrationEndpoint(s.server02)
        let env = CLITests.environment(s.lab.realm)
        func migrate(_ vm: String, _ extra: [String]) async throws -> (Int32, String, String) {
            try await CLITests.run(["migrate", "--vm", vm, "--to", s.name02, "--endpoint", endpoint02.description,
                                    "--via", management.description, "--source-fqdn", s.name01, "--realm", s.lab.realmName]
                                   + extra, s.lab, environment: env)
        }
        let credssp = try await migrate("vm-shell", ["--sign-on", "credssp", "--user", s.lab.user, "--password-file", passwordFile])
        let ccache = try await s.lab.realm.kinit(s.lab.user, password: s.lab.userPassword)
        let kerberos = try await migrate("vm-kerb", ["--ccache", ccache])
        let wrong = try await migrate("vm-kerb", ["--sign-on", "credssp", "--user", s.lab.user, "--password-file", wrongFile])
        await s.stop()
        #expect(credssp.0 == 0, "\(credssp)")
        #expect(credssp.1.contains("authenticated as \(s.lab.userPrincipal)"), "\(credssp)")
        #expect(s.lab.contents(s.lab.destinationVMs, "vm-shell") == bytes)
        #expect(kerberos.0 == 1, "\(kerberos)")
        #expect(kerberos.2.hasPrefix(CredSSPMoveTests.seedError(s.name02) + "\n"), "\(kerberos)")
        #expect(wrong.0 == 1, "\(wrong)")
        #expect(wrong.2.contains("(0x8009030C)"), "\(wrong)")
        #expect(s.lab.sourceVMs.contains("vm-kerb"))
    }

    @Test("A console sign-on (--from-config) on a CredSSP source moves with the password and fails without it")
    func console() async throws {
        let s = try await CredSSPMoveTests.start()
        defer { s.lab.remove() }
        let bytes = try s.lab.createVM("vm-console", size: 100_000)
        let configFile = s.lab.directory + "/server01.json"
        try s.server01.configuration.save(configFile)
        let endpoint02 = try s.migrationEndpoint(s.server02)
        let env = CLITests.environment(s.lab.realm)
        let args = ["migrate", "--vm", "vm-console", "--to", s.name02, "--endpoint", endpoint02.description,
                    "--from-config", configFile]
        let without = try await CLITests.run(args, s.lab, environment: env)
        let passwordFile = s.lab.directory + "/password"
        try (s.lab.userPassword + "\n").write(toFile: passwordFile, atomically: true, encoding: .utf8)
        let with = try await CLITests.run(args + ["--user", s.lab.user, "--password-file", passwordFile], s.lab, environment: env)
        await s.stop()
        #expect(without.0 == 1, "\(without)")
        #expect(without.2.hasPrefix(CredSSPMoveTests.seedError(s.name02) + "\n"), "\(without)")
        #expect(with.0 == 0, "\(with)")
        #expect(s.lab.contents(s.lab.destinationVMs, "vm-console") == bytes)
    }

    @Test("A console sign-on (--from-config) applies the source's own checks: Credential Guard (A7), protected users (A4), migration disabled (P3)")
    func consoleAppliesSourceChecks() async throws {
        let s = try await CredSSPMoveTests.start()
        defer { s.lab.remove() }
        _ = try s.lab.createVM("vm-guarded", size: 10_000)
        let endpoint02 = try s.migrationEndpoint(s.server02)
        let env = CLITests.environment(s.lab.realm)
        let passwordFile = s.lab.directory + "/password-checks"
        try (s.lab.userPassword + "\n").write(toFile: passwordFile, atomically: true, encoding: .utf8)
        func run(_ change: (inout HostConfiguration) -> Void) async throws -> (Int32, String, String) {
            var configuration = s.server01.configuration
            change(&configuration)
            let file = s.lab.directory + "/server01-\(UUID().uuidString).json"
            try configuration.save(file)
            return try await CLITests.run(["migrate", "--vm", "vm-guarded", "--to", s.name02, "--endpoint", endpoint02.description,
                                           "--from-config", file, "--user", s.lab.user, "--password-file", passwordFile],
                                          s.lab, environment: env)
        }
        let guarded = try await run { $0.credentialGuard = true }
        let protected = try await run { $0.protectedUsers = [s.lab.user] }
        let disabled = try await run { $0.migrationEnabled = false }
        await s.stop()
        #expect(guarded.0 == 1 && guarded.2.hasPrefix(CredSSPMoveTests.seedError(s.name02) + "\n"), "\(guarded)")
        #expect(guarded.2.contains("rule A7"), "\(guarded)")
        #expect(protected.0 == 1 && protected.2.hasPrefix(CredSSPMoveTests.seedError(s.name02) + "\n"), "\(protected)")
        #expect(protected.2.contains("rule A4"), "\(protected)")
        #expect(disabled.0 == 1 && disabled.2.contains("Live migration is not enabled on host TestServer01"), "\(disabled)")
        #expect(s.lab.sourceVMs.contains("vm-guarded"), "nothing moved")
    }
}
