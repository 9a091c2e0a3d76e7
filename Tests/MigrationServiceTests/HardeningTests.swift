import Foundation
import GSS
@testable import MigrationService
import NIOCore
import Testing
import WindowsStatus

/// Issue #15: an authenticated peer's offer cannot crash or fill the destination; texts sent to peers name no
/// server path; peer text is harmless in logs.
@Suite("Hardening", .serialized, .timeLimit(.minutes(2)))
struct HardeningTests {
    /// Authenticates as the lab's user, offers `vm` of `size` bytes and returns the destination's answer.
    static func answer(toOfferOf size: UInt64, vm: String, _ lab: ServiceLab,
                       _ destination: MigrationDestination) async throws -> Result<WireMessage, MigrationServiceError> {
        let credential = try await lab.userCredential()
        let target = try lab.target(destination)
        let name = try target.targetName()
        let id = MigrationID.random()
        return try await FaultTests.raw(lab, destination) { conn throws(MigrationServiceError) in
            // Protocol 2 binds the connection to one migration: the offer must name the same id.
            conn.binding = ConnectionBinding(migrationID: id, channel: 0)
            _ = try await KerberosHandshake.client(conn, purpose: .migration, target: name, credential: credential,
                                                   destinationName: target.fqdn)
            try await conn.send(.offer(MigrationOffer(id: id, vm: vm, size: size, sha256: [UInt8](repeating: 0, count: 32),
                                                      performance: .tcpIP, channels: 1, chunkSize: 65536)))
            do throws(MigrationServiceError) { return .success(try await conn.receive()) } catch { return .failure(error) }
        }
    }

    @Test("an offer of 2^63 bytes or more is refused with ERROR_DISK_FULL and the daemon keeps serving")
    func hugeOffer() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination()
        for size in [UInt64(1) << 63, UInt64.max] {
            let answer = try await Self.answer(toOfferOf: size, vm: "huge", lab, destination)
            guard case .failure(let error) = answer else { Issue.record("accepted: \(answer)"); continue }
            #expect(error.status == .diskFull, "\(error)")
            #expect(error.stage == .destination)
        }
        // Still serving: a real move works afterwards.
        let bytes = try lab.createVM("after", size: 100_000)
        _ = try await lab.source.move(vm: "after", to: lab.target(destination), credential: try await lab.userCredential())
        #expect(lab.contents(lab.destinationVMs, "after") == bytes)
        #expect(lab.destinationVMs.stagingFiles().isEmpty)
        await destination.stop()
    }

    @Test("an offer larger than the free space minus the reserve is refused before any file is made")
    func freeSpace() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        var fs = statvfs()
        try FileManager.default.createDirectory(atPath: lab.destinationVMs.directory, withIntermediateDirectories: true)
        #expect(statvfs(lab.destinationVMs.directory, &fs) == 0)
        let free = UInt64(fs.f_bavail) * UInt64(fs.f_frsize)
        var configuration = lab.destinationConfiguration()
        configuration.limits.freeSpaceReserve = 1 << 20
        let destination = try await lab.startDestination(configuration)
        // 1 TiB more than is free: refused (a sparse file of that size used to be created).
        let tooBig = try await Self.answer(toOfferOf: free + (1 << 40), vm: "big", lab, destination)
        guard case .failure(let error) = tooBig else { Issue.record("accepted: \(tooBig)"); return }
        #expect(error.status == .diskFull, "\(error)")
        #expect(!error.detail.contains(lab.directory), "a server path reached the peer: \(error.detail)")
        #expect(lab.destinationVMs.stagingFiles().isEmpty)
        // A reserve larger than the free space refuses even a small VM.
        configuration.limits.freeSpaceReserve = free + (1 << 40)
        await destination.update(configuration)
        let small = try await Self.answer(toOfferOf: 4096, vm: "small", lab, destination)
        guard case .failure(let error2) = small else { Issue.record("accepted: \(small)"); return }
        #expect(error2.status == .diskFull)
        // With the reserve back to 1 MiB the same offer is accepted.
        configuration.limits.freeSpaceReserve = 1 << 20
        await destination.update(configuration)
        let accepted = try await Self.answer(toOfferOf: 4096, vm: "small", lab, destination)
        guard case .success(.ready) = accepted else { Issue.record("refused: \(accepted)"); return }
        await destination.stop()
    }

    @Test("error texts sent to a peer name no absolute server path")
    func noPathsToPeers() {
        let e = MigrationServiceError.failure(.storage, .notFound, stage: .source, reason: "Could not open /srv/a/vms/vm1.vhdx.",
                                              detail: "no state file /srv/a/vms/vm1.vhdx, keytab '/etc/k/krb5.keytab' (FILE:/tmp/cc)")
        let wire = e.wire
        #expect(!wire.message.contains("/srv"), "\(wire.message)")
        #expect(wire.message.contains("Could not open vm1.vhdx."), "\(wire.message)")
        #expect(wire.detail == "no state file vm1.vhdx, keytab 'krb5.keytab' (FILE:cc)", "\(wire.detail)")
        // Not paths: SPNs and subnets stay.
        #expect(PeerText.withoutPaths("Microsoft Virtual System Migration Service/b.test 127.0.0.0/24")
                == "Microsoft Virtual System Migration Service/b.test 127.0.0.0/24")
    }

    @Test("a peer's text is one bounded log line")
    func logSanitizing() {
        let forged = "bad\nINFO forged line\r\u{1B}[31mred\u{0}" + String(repeating: "x", count: 5000)
        let logged = PeerText.forLog(forged)
        #expect(!logged.contains("\n") && !logged.contains("\r") && !logged.contains("\u{1B}") && !logged.contains("\u{0}"))
        #expect(logged.hasPrefix("bad\\nINFO forged line\\r\\u{1B}[31mred\\u{0}"), "\(logged.prefix(60))")
        #expect(logged.unicodeScalars.count <= PeerText.maximumLoggedLength + 12)
    }

    @Test("a daemon whose keytab is missing or lacks its service principals refuses to start")
    func keytabCheckedAtStart() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        func configuration(keytab: String) -> HostConfiguration {
            HostConfiguration(name: "TestServer02", fqdn: lab.destinationFQDN, address: ServiceLab.destinationAddress,
                              realm: lab.realmName, keytab: keytab, ccacheDirectory: lab.directory, migrationPort: 0,
                              allowedUsers: [lab.user], vmDirectory: lab.destinationVMs.directory, authenticationType: .kerberos)
        }
        for keytab in [lab.directory + "/missing.keytab", lab.sourceKeytab] {
            let daemon = HostDaemon(configuration: configuration(keytab: keytab))
            do throws(MigrationServiceError) {
                try await daemon.start()
                Issue.record("started with \(keytab)")
                await daemon.stop()
            } catch {
                #expect(error.kind == .configuration, "\(error)")
                #expect(error.message.contains(keytab), "\(error.message)")
                #expect(daemon.destination.endpoint == nil && daemon.management.endpoint == nil)
            }
        }
        // The destination's keytab (its migration principal) starts.
        let daemon = HostDaemon(configuration: configuration(keytab: lab.destinationKeytab))
        try await daemon.start()
        #expect(daemon.destination.endpoint != nil)
        await daemon.stop()
    }

    @Test("a hello with an unknown authentication kind is answered with SEC_E_SECPKG_NOT_FOUND")
    func unknownAuthenticationKind() async throws {
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination()
        var payload = ByteBuffer()
        WireMessage.hello(minVersion: 1, maxVersion: 1, purpose: .migration, authentication: .kerberos).encode(into: &payload)
        var bytes = Array(payload.readableBytesView)
        bytes[bytes.count - 1] = 0x7E   // the authentication kind is the hello's last byte
        let frame = withUnsafeBytes(of: UInt32(bytes.count).bigEndian, Array.init) + bytes
        let error = try await FaultTests.answer(to: frame, lab, destination)
        #expect(error?.status == .packageNotFound, "\(String(describing: error))")
        #expect(error?.detail.contains("0x7e") == true, "\(String(describing: error))")
        await destination.stop()
    }

    @Test("VM names are limited in UTF-8 bytes as documented: 90 three-byte characters are refused with E_INVALIDARG")
    func nameBytes() async throws {
        let fits = String(repeating: "é", count: 100)            // 100 characters, 200 bytes
        let tooLong = String(repeating: "€", count: 90)          // 90 characters, 270 bytes
        #expect(throws: Never.self) { try VMStore.checkName(fits, stage: .destination) }
        do throws(MigrationServiceError) {
            try VMStore.checkName(tooLong, stage: .destination)
            Issue.record("accepted a 270-byte name")
        } catch {
            #expect(error.status == .invalidArgument)
            #expect(error.detail.contains("200 bytes"), "\(error.detail)")
        }
        let lab = try await ServiceLab.make()
        defer { lab.remove() }
        let destination = try await lab.startDestination()
        let answer = try await Self.answer(toOfferOf: 4096, vm: tooLong, lab, destination)
        guard case .failure(let e) = answer else { Issue.record("accepted: \(answer)"); return }
        #expect(e.status == .invalidArgument, "\(e)")
        await destination.stop()
    }
}
