import Foundation
import GSS
@testable import MigrationService
import NIOCore
import Testing
import WindowsStatus

/// Issue #15: the limits that make a daemon safe to expose (ServiceLimits).
@Suite("Limits", .serialized, .timeLimit(.minutes(2)))
struct LimitsTests {
    /// A plain TCP connection from `local` to `endpoint` (a peer that never authenticates).
    static func rawConnect(from local: String, to endpoint: ServiceEndpoint) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        var me = sockaddr_in()
        me.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, local, &me.sin_addr)
        var them = sockaddr_in()
        them.sin_family = sa_family_t(AF_INET)
        them.sin_port = in_port_t(UInt16(endpoint.port).bigEndian)
        inet_pton(AF_INET, endpoint.address, &them.sin_addr)
        let bound = withUnsafePointer(to: &me) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        let connected = withUnsafePointer(to: &them) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        try #require(bound == 0 && connected == 0, "\(String(cString: strerror(errno)))")
        return fd
    }

    /// Whether the server closed `fd` within `seconds` (read returns 0 or an error).
    static func closedByServer(_ fd: Int32, within seconds: Double) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, Int32(seconds * 1000)) == 1 else { return false }
        var byte: UInt8 = 0
        return read(fd, &byte, 1) <= 0
    }

    /// Waits (at most 20 s) until the destination counts `n` unauthenticated connections.
    static func waitForUnauthenticated(_ n: Int, _ destination: MigrationDestination) async -> Bool {
        for _ in 0..<400 {
            if destination.unauthenticatedConnections == n { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    @Test("unauthenticated connections are capped per peer address and per daemon; authenticated ones are not counted")
    func connectionCaps() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        var configuration = lab.destinationConfiguration(networks: [], useAnyNetwork: true)
        configuration.limits.maximumUnauthenticatedConnections = 4
        configuration.limits.maximumUnauthenticatedConnectionsPerAddress = 3
        let destination = try await lab.startDestination(configuration)
        let endpoint = try requireEndpoint(destination)
        var held: [Int32] = []
        defer { for fd in held { close(fd) } }
        for i in 0..<3 {
            held.append(try Self.rawConnect(from: "127.0.0.21", to: endpoint))
            #expect(await Self.waitForUnauthenticated(i + 1, destination))
        }
        // The fourth from the same address is closed at once.
        let overAddress = try Self.rawConnect(from: "127.0.0.21", to: endpoint)
        #expect(Self.closedByServer(overAddress, within: 20), "a 4th unauthenticated connection from one address was kept")
        close(overAddress)
        // Another address gets the daemon's last place; a third address then nothing.
        held.append(try Self.rawConnect(from: "127.0.0.22", to: endpoint))
        #expect(await Self.waitForUnauthenticated(4, destination))
        let overTotal = try Self.rawConnect(from: "127.0.0.23", to: endpoint)
        #expect(Self.closedByServer(overTotal, within: 20), "a 5th unauthenticated connection to the daemon was kept")
        close(overTotal)
        // The held ones are still open (not closed by the caps).
        for fd in held { #expect(!Self.closedByServer(fd, within: 0.05)) }
        // Once they go, a real move works (its connection counts only until it authenticates).
        for fd in held { close(fd) }
        held = []
        #expect(await Self.waitForUnauthenticated(0, destination))
        let bytes = try lab.createVM("capped", size: 200_000)
        _ = try await lab.source.move(vm: "capped", to: lab.target(destination), credential: try await lab.userCredential(),
                                      options: MoveOptions(performance: .smb, channels: 4))
        #expect(lab.contents(lab.destinationVMs, "capped") == bytes)
        #expect(await Self.waitForUnauthenticated(0, destination), "authenticated connections gave their places back")
        await destination.stop()
    }

    @Test("before authentication a frame above limits.maximumUnauthenticatedFrameLength is refused from its length field")
    func smallFramesBeforeAuthentication() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination()
        // 1 MiB declared (allowed after authentication): refused at once, before its bytes arrive.
        let big = try await FaultTests.answer(to: [0x00, 0x10, 0x00, 0x00, 1], lab, destination)
        #expect(big?.status == .illegalMessage, "\(String(describing: big))")
        #expect(big?.detail.contains("outside 1…65536") == true, "\(String(describing: big))")
        // An authenticated move still uses 1 MiB chunks.
        let bytes = try lab.createVM("bigchunks", size: 3 << 20)
        _ = try await lab.source.move(vm: "bigchunks", to: lab.target(destination), credential: try await lab.userCredential(),
                                      options: MoveOptions(performance: .tcpIP, chunkSize: 1 << 20))
        #expect(lab.contents(lab.destinationVMs, "bigchunks") == bytes)
        await destination.stop()
    }

    @Test("a stalled authenticated source loses its N2 slot after limits.progressTimeout; the next move runs")
    func progressTimeout() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        var configuration = lab.destinationConfiguration(maximumMigrations: 1)
        configuration.limits.progressTimeout = 1
        let destination = try await lab.startDestination(configuration)
        let error = try await FaultTests.offered(lab, destination, vm: "stalled", size: 4 * 65536) { conn throws(MigrationServiceError) -> MigrationServiceError? in
            // Ready, then silence: the destination must hang up.
            do throws(MigrationServiceError) { _ = try await conn.receive(); return nil } catch { return error }
        }
        #expect(error?.kind == .connectionLost, "\(String(describing: error))")
        #expect(await FaultTests.failure(of: "stalled", destination) != nil)
        #expect(!lab.destinationVMs.contains("stalled"))
        #expect(lab.destinationVMs.stagingFiles().isEmpty)
        // The slot is free: a move gets it without queueing.
        let bytes = try lab.createVM("next", size: 100_000)
        let report = try await lab.source.move(vm: "next", to: lab.target(destination), credential: try await lab.userCredential())
        #expect(report.queuedAt == nil)
        #expect(lab.contents(lab.destinationVMs, "next") == bytes)
        await destination.stop()
    }

    @Test("limits in host.json: defaults, overrides, validation")
    func hostFile() throws {
        let json = """
            {"name":"B","fqdn":"b.delegation.test","address":"127.0.0.12","realm":"DELEGATION.TEST","keytab":"/k",
             "ccacheDirectory":"/c","vmDirectory":"/v","limits":{"maximumUnauthenticatedConnections":7,"progressTimeout":2.5}}
            """
        let c = try JSONDecoder().decode(HostConfiguration.self, from: Data(json.utf8))
        #expect(c.limits.maximumUnauthenticatedConnections == 7)
        #expect(c.limits.progressTimeout == 2.5)
        #expect(c.limits.maximumUnauthenticatedConnectionsPerAddress == ServiceLimits.default.maximumUnauthenticatedConnectionsPerAddress)
        #expect(c.destinationConfiguration.limits == c.limits)
        var bad = c
        bad.limits.maximumUnauthenticatedFrameLength = 10
        #expect(throws: MigrationServiceError.self) { try bad.validate() }
        let round = try JSONDecoder().decode(HostConfiguration.self, from: JSONEncoder().encode(c))
        #expect(round.limits == c.limits)
    }
}
