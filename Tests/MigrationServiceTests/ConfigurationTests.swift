import Foundation
import Hosts
@testable import MigrationService
import MigrationRules
import NIOCore
import Testing
import WindowsStatus

/// Addresses, host configuration files and the message codec (no network).
@Suite("Configuration and codec")
struct ConfigurationTests {
    @Test("only loopback addresses are accepted")
    func loopbackOnly() throws {
        #expect(try ServiceEndpoint(parsing: "127.0.0.12:6600") == ServiceEndpoint(address: "127.0.0.12", port: 6600))
        for bad in ["10.1.2.3:6600", "0.0.0.0:1", "192.168.0.1:80", "localhost:1", "127.0.0.1", "127.0.0.1:70000"] {
            let error = #expect(throws: MigrationServiceError.self) { try ServiceEndpoint(parsing: bad) }
            #expect(error?.status == .invalidArgument, "\(bad)")
        }
        #expect(throws: MigrationServiceError.self) { try MigrationSource(localAddress: "10.0.0.1", vmDirectory: "/tmp") }
        #expect(throws: MigrationServiceError.self) { try ManagementClient(localAddress: "8.8.8.8") }
    }

    @Test("a host configuration file: defaults, validation, round trip, hosts table")
    func hostConfiguration() throws {
        let directory = NSTemporaryDirectory() + "hostconf-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let minimal = """
        {"name": "TestServer02", "fqdn": "b.delegation.test", "address": "127.0.0.12", "realm": "DELEGATION.TEST",
         "keytab": "/k", "ccacheDirectory": "/c", "vmDirectory": "/v",
         "hosts": {"a.delegation.test": "127.0.0.11"}, "incomingNetworks": ["127.0.0.0/24"], "performanceOption": "SMB"}
        """
        try minimal.write(toFile: directory + "/min.json", atomically: true, encoding: .utf8)
        let c = try HostConfiguration.load(directory + "/min.json")
        #expect(c.migrationPort == 6600 && c.managementPort == 0 && c.maximumMigrations == 2 && c.migrationEnabled)
        #expect(c.performanceOption == .smb)
        #expect(c.resolve("a.delegation.test") == "127.0.0.11")
        #expect(c.resolve("A.Delegation.Test") == "127.0.0.11")
        #expect(c.resolve("b.delegation.test") == "127.0.0.12")
        #expect(c.resolve("elsewhere.test") == nil)
        #expect(c.destinationConfiguration.servicePrincipal == "Microsoft Virtual System Migration Service/b.delegation.test@DELEGATION.TEST")
        #expect(c.destinationConfiguration.acceptsNetwork("127.0.0.12"))
        #expect(!c.destinationConfiguration.acceptsNetwork("127.0.1.12"))
        try c.save(directory + "/copy.json")
        #expect(try HostConfiguration.load(directory + "/copy.json") == c)

        var bad = c
        bad.hosts["evil.test"] = "192.0.2.1"
        try bad.save(directory + "/bad.json")
        let error = #expect(throws: MigrationServiceError.self) { try HostConfiguration.load(directory + "/bad.json") }
        #expect(error?.message.contains("hosts[evil.test]") == true)
    }

    @Test("a malformed host.json names the file, line:column and field (docs/cli.md)")
    func malformedHostConfiguration() throws {
        let directory = NSTemporaryDirectory() + "hostconf-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let head = """
        {"name": "TestServer02", "fqdn": "b.delegation.test", "address": "127.0.0.12", "realm": "DELEGATION.TEST",
         "keytab": "/k", "ccacheDirectory": "/c", "vmDirectory": "/v",
        """
        let cases: [(String, String)] = [
            // A wrong type in a nested field: its line, its column, its path.
            (head + "\n \"limits\": {\"freeSpaceReserve\": 0,\n   \"progressTimeout\": \"soon\"}}",
             "host.json:4:23: field limits.progressTimeout: expected a number"),
            // A missing field: the object that lacks it.
            ("{\"name\": \"TestServer02\",\n \"fqdn\": \"b.delegation.test\"}", "host.json:1:1: field address: missing field \"address\""),
            // A syntax error: the position only.
            (head + "\n \"hosts\": {\"a.test\" \"127.0.0.11\"}}", "host.json:3:"),
        ]
        for (text, expected) in cases {
            try text.write(toFile: directory + "/host.json", atomically: true, encoding: .utf8)
            let error = #expect(throws: MigrationServiceError.self) { try HostConfiguration.load(directory + "/host.json") }
            #expect(error?.status == .invalidArgument)
            #expect(error?.message.contains(expected) == true, "\(String(describing: error?.message)) lacks \(expected)")
        }
    }

    @Test("P1 matching: exact principals, bare names in the realm")
    func allowedUsers() {
        let c = DestinationConfiguration(hostName: "H", fqdn: "h.test", realm: "R.TEST", keytab: "/k", vmDirectory: "/v",
                                         allowedUsers: ["alice", "bob@OTHER.TEST"])
        #expect(c.allows("alice@R.TEST"))
        #expect(c.allows("bob@OTHER.TEST"))
        #expect(!c.allows("bob@R.TEST"))
        #expect(!c.allows("Alice@R.TEST"))
    }

    @Test("every message kind survives encode → decode")
    func codecRoundTrip() throws {
        let id = MigrationID.random()
        let messages: [WireMessage] = [
            .hello(minVersion: 1, maxVersion: 3, purpose: .management, authentication: .credSSP),
            .helloAck(version: 1, authentication: .kerberos),
            .token([1, 2, 3]),
            .authResult(principal: "alice@R", server: "b.test"),
            .error(WireError(status: 0x8009_030E, stage: 1, kind: 1, windowsText: "t", message: "m\nn", detail: "d")),
            .offer(MigrationOffer(id: id, vm: "vm é", size: 1 << 40, sha256: Array(repeating: 7, count: 32),
                                  performance: .smb, channels: 4, chunkSize: 1 << 20)),
            // P4: the source's generation travels after the other fields, only when known.
            .offer(MigrationOffer(id: id, vm: "v", size: 1, sha256: Array(repeating: 1, count: 32),
                                  performance: .tcpIP, channels: 1, chunkSize: 4096, sourceGeneration: "2012 R2")),
            .join(id: id, channel: 3), .queued(position: 2), .ready, .commit, .committed,
            .chunk(ChunkHeader(sequence: 9, offset: 1 << 33, length: 3, flags: 1), ByteBuffer(bytes: [4, 5, 6])),
            .channelDone(chunks: 5, bytes: 99),
            .moveRequest(MoveRequestMessage(vm: "v", destination: "d", endpointHost: "", endpointPort: 0, performance: nil, channels: 0)),
            .progress(bytes: 1, total: 2),
            .moveResult(MigrationReport(vm: "v", bytes: 3, sha256: "ab", destinationPrincipal: "p", performance: .tcpIP,
                                   channels: 1, queuedAt: nil)),
        ]
        for m in messages {
            var b = ByteBuffer()
            m.encode(into: &b)
            #expect(try WireMessage.decode(b) == m)
            // An offer with the source's generation (P4) cut just before it is an older peer's offer.
            var legacy: Int? = nil
            if case .offer(var o) = m, o.sourceGeneration != nil {
                o.sourceGeneration = nil
                var lb = ByteBuffer()
                WireMessage.offer(o).encode(into: &lb)
                legacy = lb.readableBytes
                #expect(try WireMessage.decode(b.getSlice(at: 0, length: lb.readableBytes) ?? ByteBuffer()) == .offer(o))
            }
            // Every other truncation is refused, never crashes.
            for cut in 0..<b.readableBytes where m.kind != .token && m.kind != .chunk && cut != legacy {
                let prefix = b.getSlice(at: 0, length: cut) ?? ByteBuffer()
                #expect(throws: WireDecodingError.self) { try WireMessage.decode(prefix) }
            }
        }
    }

    @Test("the CLI and the simulator print the same P1 and connection lines")
    func texts() {
        #expect(MigrationMessages.connectionFailure(destination: "TestServer01", status: .noCredentials) == """
            Virtual machine migration operation failed at migration Source.
            Failed to establish a connection with host TestServer01: No credentials are available in the security package (0x8009030E).
            """)
    }
}
