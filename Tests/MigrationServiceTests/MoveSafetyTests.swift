import Foundation
import GSS
@testable import MigrationService
import Synchronization
import Testing

/// A VM is on one host only: it is locked at the source for the whole move, and a state file leaves the
/// source's VMs before the destination may register it (the commit window).
@Suite("Move safety: one move per VM, no VM on two hosts")
struct MoveSafetyTests {
    @Test("a second, concurrent move of the same VM is refused with ERROR_BUSY; the first one completes")
    func concurrentMoveRefused() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination()
        let target = try lab.target(destination)
        let source = try lab.source
        let bytes = try lab.createVM("vm-lock", size: 1 << 20)
        let credential = try await lab.userCredential()
        let (entered, enteredContinuation) = AsyncStream.makeStream(of: Void.self)
        let (gate, gateContinuation) = AsyncStream.makeStream(of: Void.self)
        let once = Mutex(false)
        let options = MoveOptions(performance: .tcpIP, chunkSize: 65536, progress: { p in
            guard p.phase == .transferring, once.withLock({ let was = $0; $0 = true; return !was }) else { return }
            enteredContinuation.yield()
            for await _ in gate { break }  // hold the first move mid-stream
        })
        let first = Task { () -> Result<MigrationReport, MigrationServiceError> in
            do throws(MigrationServiceError) {
                return .success(try await source.move(vm: "vm-lock", to: target, credential: credential, options: options))
            } catch {
                return .failure(error)
            }
        }
        for await _ in entered { break }
        var second: MigrationServiceError? = nil
        do throws(MigrationServiceError) {
            _ = try await source.move(vm: "vm-lock", to: target, credential: credential)
        } catch {
            second = error
        }
        gateContinuation.yield()
        gateContinuation.finish()
        let report = try await first.value.get()
        await destination.stop()
        #expect(second?.status == .busy, "\(String(describing: second))")
        #expect(second?.kind == .storage)
        #expect(second?.message.contains("Virtual machine 'vm-lock' is already being moved") == true)
        #expect(report.bytes == UInt64(bytes.count))
        #expect(lab.contents(lab.destinationVMs, "vm-lock") == bytes)
        #expect(!lab.sourceVMs.contains("vm-lock"))
        // The lock was released: the lock file may stay, no move holds it.
        #expect(lab.sourceVMs.uncertainMoves().isEmpty)
    }

    @Test("the link dying in the commit window of a state file: registered at the destination only, the source keeps an unregistered copy and reports the move uncertain")
    func stateFileCommitWindow() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination()
        let relay = try await LinkRelay.start(to: ServiceLab.destinationAddress, port: try requireEndpoint(destination).port)
        let target = MigrationTarget(fqdn: lab.destinationFQDN, endpoint: try ServiceEndpoint(address: "127.0.0.1", port: relay.port),
                                     realm: lab.realmName)
        let source = try lab.source
        let bytes = try lab.createVM("vm-window", size: 1 << 20)
        let credential = try await lab.userCredential()
        let options = MoveOptions(performance: .tcpIP, progress: { p in
            guard p.phase == .committing else { return }
            relay.swallowReplies()  // `commit` still arrives; `committed` never comes back
            Task {
                try? await Task.sleep(for: .seconds(1))
                await relay.cut()
            }
        })
        var failure: MigrationServiceError? = nil
        do throws(MigrationServiceError) {
            _ = try await source.move(vm: "vm-window", to: target, credential: credential, options: options)
        } catch {
            failure = error
        }
        let committed = await destination.waitForEvents { $0.contains(.committed(vm: "vm-window", bytes: UInt64(bytes.count))) }
        #expect(committed, "the destination never committed vm-window")
        await destination.stop()
        let error = try #require(failure)
        #expect(error.kind == .uncertain, "\(error)")
        #expect(error.detail.contains("Check whether 'vm-window' is registered on \(lab.destinationFQDN)"))
        #expect(lab.contents(lab.destinationVMs, "vm-window") == bytes, "registered at the destination")
        #expect(!lab.sourceVMs.contains("vm-window"), "not registered at the source: never on both")
        let kept = lab.sourceVMs.uncertainMoves()
        #expect(kept.map(\.vm) == ["vm-window"])
        #expect(kept.first.flatMap { FileManager.default.contents(atPath: $0.path) }.map { [UInt8]($0) } == bytes, "the kept copy is whole")
    }
}
