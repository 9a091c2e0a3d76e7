import Foundation
import GSS
@testable import MigrationService
import Testing

/// An independent source (Tests/MigrationServiceTests/peer/suite2_source.py: python-gssapi +
/// `cryptography`'s AESGCM, written from docs/wire-protocol.md) moves a VM to a real
/// MigrationDestination on protocol version 2, suite 2.
@Suite("Independent suite-2 peer", .timeLimit(.minutes(2)))
struct IndependentPeerTests {
    /// Runs the python source for `vm` with the offer's digest `digest` (none, sha256, wrong); returns its
    /// exit status, standard output and standard error.
    private func runPeer(_ lab: ServiceLab, _ endpoint: ServiceEndpoint, vm: String, digest: String) async throws -> (Int32, String, String) {
        let ccache = try await lab.realm.kinit(lab.user, password: lab.userPassword)
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("peer/suite2_source.py").path
        let target = MigrationServiceNames.migrationPrincipal(fqdn: lab.destinationFQDN, realm: lab.realmName)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, endpoint.address, "\(endpoint.port)", target, vm, lab.sourceVMs.path(of: vm), digest]
        process.environment = ProcessInfo.processInfo.environment.merging(lab.realm.environment) { $1 }
            .merging(["KRB5CCNAME": ccache, "PYTHONDONTWRITEBYTECODE": "1"]) { $1 }
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        return await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                let out = output.fileHandleForReading.readDataToEndOfFile()
                let err = errors.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                continuation.resume(returning: (process.terminationStatus, String(decoding: out, as: UTF8.self),
                                                String(decoding: err, as: UTF8.self)))
            }
        }
    }

    /// Protocol 2's offer carries no digest (zeros, what this implementation sends): the destination reads
    /// nothing back. A source that still sends the file's SHA-256 gets it verified.
    @Test("python-gssapi + AESGCM source → MigrationDestination: registered byte-identical", arguments: ["none", "sha256"])
    func pythonSourceMoves(digest: String) async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination()
        let endpoint = try requireEndpoint(destination)
        let bytes = try lab.createVM("vm-py", size: 5 * 65536 + 4321)
        let (status, out, err) = try await runPeer(lab, endpoint, vm: "vm-py", digest: digest)
        #expect(status == 0, "python source: \(err)")
        #expect(out.hasPrefix("COMMITTED \(bytes.count) as \(lab.userPrincipal)"), "\(out) \(err)")
        await destination.stop()
        let arrived = lab.contents(lab.destinationVMs, "vm-py") == bytes
        #expect(arrived)
        #expect(await destination.events().contains(.committed(vm: "vm-py", bytes: UInt64(bytes.count))))
    }

    @Test("a protocol 2 offer whose SHA-256 does not match the file: ERROR_CRC at the commit, nothing registered")
    func wrongDigestRefused() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination()
        let endpoint = try requireEndpoint(destination)
        _ = try lab.createVM("vm-py", size: 3 * 65536 + 17)
        let (status, out, err) = try await runPeer(lab, endpoint, vm: "vm-py", digest: "wrong")
        #expect(status != 0)
        #expect(!out.contains("COMMITTED"))
        // The destination's sealed error: HRESULT 0x80070017 (ERROR_CRC) right after the kind byte.
        #expect(err.contains("error from the destination") && err.contains("\\x80\\x07\\x00\\x17"), "\(err)")
        await destination.stop()
        #expect(!lab.destinationVMs.contains("vm-py"))
        #expect(lab.destinationVMs.stagingFiles().isEmpty)
        #expect(await destination.events().contains { if case .failed(vm: "vm-py", status: .crcError, detail: _) = $0 { true } else { false } })
    }
}
