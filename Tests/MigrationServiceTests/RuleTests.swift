import Foundation
import GSS
import Hosts
@testable import MigrationService
import MigrationRules
import Testing
import WindowsStatus

/// P1, N1 and N2 enforced by a real destination.
@Suite("Destination rules P1, N1, N2")
struct RuleTests {
    @Test("P1: a user outside the allowed set is denied (0x80070005) and nothing moves")
    func denied() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination(lab.destinationConfiguration(allowed: ["someone-else"]))
        try lab.createVM("vm-p1")
        let error = await #expect(throws: MigrationServiceError.self) {
            try await lab.source.move(vm: "vm-p1", to: lab.target(destination), credential: lab.userCredential())
        }
        let events = await destination.events()
        await destination.stop()
        #expect(error?.status == .accessDenied)
        #expect(error?.kind == .authorization)
        #expect(error?.stage == .destination)
        #expect(error?.message == MigrationMessages.permissionDenied(user: lab.userPrincipal, host: "TestServer02", stage: .destination))
        // The text docs/migration-service.md gives for P1, word for word.
        #expect(error?.message == "Virtual machine migration operation failed at migration Destination.\n"
                + "User '\(lab.userPrincipal)' does not have permission to perform live migration on host TestServer02: "
                + "Access is denied (0x80070005).", "\(String(describing: error?.message))")
        #expect(events == [.denied(user: lab.userPrincipal, status: .accessDenied)])
        #expect(lab.sourceVMs.contains("vm-p1"))
        #expect(lab.destinationVMs.list().isEmpty)
    }

    @Test("P1: a user removed from the allowed set between two moves is denied the second time")
    func removedBetweenMoves() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination()
        try lab.createVM("vm-a", size: 200_000)
        try lab.createVM("vm-b", size: 200_000)
        _ = try await lab.source.move(vm: "vm-a", to: lab.target(destination), credential: lab.userCredential())
        await destination.update(lab.destinationConfiguration(allowed: []))
        let error = await #expect(throws: MigrationServiceError.self) {
            try await lab.source.move(vm: "vm-b", to: lab.target(destination), credential: lab.userCredential())
        }
        await destination.stop()
        #expect(error?.status == .accessDenied)
        #expect(lab.destinationVMs.list() == ["vm-a"])
        #expect(lab.sourceVMs.list() == ["vm-b"])
    }

    @Test("P3: a destination with live migration disabled refuses with ERROR_NOT_SUPPORTED")
    func disabled() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        var configuration = lab.destinationConfiguration()
        configuration.migrationEnabled = false
        let destination = try await lab.startDestination(configuration)
        try lab.createVM("vm-p3", size: 1000)
        let error = await #expect(throws: MigrationServiceError.self) {
            try await lab.source.move(vm: "vm-p3", to: lab.target(destination), credential: lab.userCredential())
        }
        await destination.stop()
        #expect(error?.status == .notSupported)
        #expect(error?.stage == .destination)
        #expect(error?.message == MigrationMessages.failure(stage: .destination, reason: "Live migration is not enabled on host TestServer02",
                                                            status: .notSupported))
        #expect(lab.sourceVMs.contains("vm-p3"))
    }

    @Test("N1: a connection on an address outside the incoming networks is refused")
    func refusedNetwork() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination(lab.destinationConfiguration(networks: ["10.0.0.0/24"]))
        try lab.createVM("vm-n1", size: 10_000)
        let error = await #expect(throws: MigrationServiceError.self) {
            try await lab.source.move(vm: "vm-n1", to: lab.target(destination), credential: lab.userCredential())
        }
        let events = await destination.events()
        await destination.stop()
        #expect(error?.status == .connectionRefused)
        #expect(error?.stage == .source)
        #expect(error?.message == MigrationMessages.connectionFailure(destination: lab.destinationFQDN, status: .connectionRefused))
        #expect(events == [.refused(localAddress: ServiceLab.destinationAddress, status: .connectionRefused)])
        #expect(lab.sourceVMs.contains("vm-n1"))
    }

    @Test("N1: use-any-network accepts any address")
    func anyNetwork() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination(lab.destinationConfiguration(networks: [], useAnyNetwork: true))
        try lab.createVM("vm-any", size: 10_000)
        _ = try await lab.source.move(vm: "vm-any", to: lab.target(destination), credential: lab.userCredential())
        await destination.stop()
        #expect(lab.destinationVMs.contains("vm-any"))
    }

    @Test("N2: with a limit of 1 the second move waits for the first, then succeeds")
    func queueing() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let (destination, source, target, credential, first) = try await Self.queueBehind(lab, first: "vm-first", second: "vm-second")
        let second = try await source.move(vm: "vm-second", to: target, credential: credential)
        let firstReport = try await first.value
        let events = await destination.events()
        await destination.stop()
        #expect(firstReport.queuedAt == nil)
        #expect(second.queuedAt == 1)
        let order = events.compactMap { e -> String? in
            switch e {
            case .started(let vm, _): "started \(vm)"
            case .queued(let vm, _): "queued \(vm)"
            case .committed(let vm, _): "committed \(vm)"
            default: nil
            }
        }
        #expect(order == ["started vm-first", "queued vm-second", "committed vm-first", "started vm-second", "committed vm-second"])
        #expect(Set(lab.destinationVMs.list()) == ["vm-first", "vm-second"])
    }
}

extension RuleTests {
    /// N2 with a limit of 1: starts moving `first`, which pauses at its first chunk until `second`
    /// is queued behind it, then runs `thenFirst`; returns once `first` has started.
    static func queueBehind(_ lab: ServiceLab, first: String, second: String,
                            thenFirst: @escaping @Sendable (MigrationDestination) async -> Void = { _ in })
        async throws -> (MigrationDestination, MigrationSource, MigrationTarget, GSSCredential, Task<MigrationReport, any Error>) {
        let destination = try await lab.startDestination(lab.destinationConfiguration(maximumMigrations: 1))
        try lab.createVM(first, size: 600_000)
        try lab.createVM(second, size: 600_000)
        let target = try lab.target(destination)
        let source = try lab.source
        let credential = try await lab.userCredential()
        let task = Task {
            try await source.move(vm: first, to: target, credential: credential, options: MoveOptions(
                performance: .tcpIP, chunkSize: 100_000,
                progress: { p in
                    if p.phase == .transferring {
                        let queued = await destination.waitForEvents { $0.contains(.queued(vm: second, position: 1)) }
                        #expect(queued, "the second move was never queued")
                        await thenFirst(destination)
                    }
                }))
        }
        let started = await destination.waitForEvents { $0.contains(.started(vm: first, user: lab.userPrincipal)) }
        #expect(started, "the first move never started")
        return (destination, source, target, credential, task)
    }

    @Test("N2: stopping a destination with a queued migration ends both moves; nothing is left behind")
    func stopWhileQueued() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let (_, source, target, credential, first) = try await Self.queueBehind(
            lab, first: "vm-running", second: "vm-waiting", thenFirst: { await $0.stop() })
        await #expect(throws: MigrationServiceError.self) {
            try await source.move(vm: "vm-waiting", to: target, credential: credential)
        }
        let firstResult = await first.result
        #expect(throws: MigrationServiceError.self) { try firstResult.get() }
        #expect(lab.destinationVMs.list().isEmpty)
        #expect(lab.destinationVMs.stagingFiles().isEmpty)
        #expect(Set(lab.sourceVMs.list()) == ["vm-running", "vm-waiting"])
    }
}

/// Keys the destination holds that no longer match the KDC's.
@Suite("Stale keytab")
struct StaleKeytabTests {
    @Test("a destination keytab with an old kvno fails authentication with SEC_E_WRONG_PRINCIPAL, clearly typed")
    func staleKeytab() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination()
        // New random key (kvno + 1) in the KDC; the destination's keytab keeps the old one.
        try await lab.realm.setPassword(MigrationServiceNames.migrationPrincipal(fqdn: lab.destinationFQDN, realm: nil), password: nil)
        try lab.createVM("vm-stale", size: 1000)
        let error = await #expect(throws: MigrationServiceError.self) {
            try await lab.source.move(vm: "vm-stale", to: lab.target(destination), credential: lab.userCredential())
        }
        let events = await destination.events()
        await destination.stop()
        #expect(error?.kind == .authentication)
        #expect(error?.status == .wrongPrincipal, "\(String(describing: error))")
        #expect(error?.message == MigrationMessages.connectionFailure(destination: lab.destinationFQDN, status: .wrongPrincipal))
        // As docs/migration-service.md gives it: stage Source, the connection line.
        #expect(error?.stage == .source)
        #expect(error?.message == "Virtual machine migration operation failed at migration Source.\n"
                + "Failed to establish a connection with host \(lab.destinationFQDN): The target principal name is incorrect (0x80090322).",
                "\(String(describing: error?.message))")
        #expect(events == [.authenticationFailed(status: .wrongPrincipal)])
        #expect(lab.sourceVMs.contains("vm-stale"))
    }
}
