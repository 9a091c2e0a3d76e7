import Foundation
import GSS
@testable import MigrationService
import Testing

/// An independent source (Tests/MigrationServiceTests/peer/suite2_source.py: python-gssapi +
/// `cryptography`'s AESGCM, written from docs/wire-protocol.md) moves a VM to a real
/// MigrationDestination on protocol version 2, suite 2.
@Suite("Independent suite-2 peer", .timeLimit(.minutes(2)))
struct IndependentPeerTests {
    @Test("python-gssapi + AESGCM source → MigrationDestination: registered byte-identical")
    func pythonSourceMoves() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination()
        let endpoint = try requireEndpoint(destination)
        let bytes = try lab.createVM("vm-py", size: 5 * 65536 + 4321)
        let ccache = try await lab.realm.kinit(lab.user, password: lab.userPassword)
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("peer/suite2_source.py").path
        let target = MigrationServiceNames.migrationPrincipal(fqdn: lab.destinationFQDN, realm: lab.realmName)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, endpoint.address, "\(endpoint.port)", target, "vm-py", lab.sourceVMs.path(of: "vm-py")]
        process.environment = ProcessInfo.processInfo.environment.merging(lab.realm.environment) { $1 }
            .merging(["KRB5CCNAME": ccache, "PYTHONDONTWRITEBYTECODE": "1"]) { $1 }
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let (out, err) = await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                let out = output.fileHandleForReading.readDataToEndOfFile()
                let err = errors.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                continuation.resume(returning: (String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self)))
            }
        }
        #expect(process.terminationStatus == 0, "python source: \(err)")
        #expect(out.hasPrefix("COMMITTED \(bytes.count) as \(lab.userPrincipal)"), "\(out) \(err)")
        await destination.stop()
        let arrived = lab.contents(lab.destinationVMs, "vm-py") == bytes
        #expect(arrived)
        #expect(await destination.events().contains(.committed(vm: "vm-py", bytes: UInt64(bytes.count))))
    }
}
