import Foundation
import GSS
import Hosts
@testable import MigrationService
import Testing
import WindowsStatus

/// Moves with the user's own credential (a ccache on the source), over real Kerberos.
@Suite("Local moves")
struct LocalMoveTests {
    @Test("a move arrives byte-identical, is registered and leaves the source", arguments: PerformanceOption.allCases)
    func move(performance: PerformanceOption) async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination()
        let bytes = try lab.createVM("vm1")
        let recorder = ProgressRecorder()
        let report = try await lab.source.move(
            vm: "vm1", to: lab.target(destination), credential: lab.userCredential(),
            options: MoveOptions(performance: performance, channels: 3, chunkSize: 256 * 1024,
                                 progress: { await recorder.record($0) }))
        await destination.stop()
        #expect(report.bytes == UInt64(bytes.count))
        #expect(report.destinationPrincipal == lab.userPrincipal)
        #expect(report.channels == (performance == .smb ? 3 : 1))
        let arrived = lab.contents(lab.destinationVMs, "vm1") == bytes
        #expect(arrived)
        #expect(!lab.sourceVMs.contains("vm1"))
        #expect(lab.destinationVMs.stagingFiles().isEmpty)
        let events = await destination.events()
        #expect(events.contains(.started(vm: "vm1", user: lab.userPrincipal)))
        #expect(events.last == .committed(vm: "vm1", bytes: UInt64(bytes.count)))
        if performance == .smb {
            #expect(events.contains(.channelJoined(vm: "vm1", channel: 1)))
            #expect(events.contains(.channelJoined(vm: "vm1", channel: 2)))
        }
        let seen = await recorder.progress
        #expect(seen.last?.phase == .committed)
        #expect(seen.contains { $0.phase == .transferring && $0.bytesSent == UInt64(bytes.count) })
    }
}

actor ProgressRecorder {
    var progress: [MigrationProgress] = []
    func record(_ p: MigrationProgress) { progress.append(p) }
}
