import Foundation
import Hosts
@testable import MigrationService
import MigrationRules
import NIOCore
import QEMU
import Testing
import WindowsStatus

/// Addresses, host configuration files and the message codec (no network).
@Suite("Configuration and codec")
struct ConfigurationTests {
    @Test("MigrationServiceError compares on its code (kind, HRESULT, end), not on its texts")
    func errorEqualityByCode() {
        let a = MigrationServiceError.connection(.authentication, .noCredentials, destination: "hv2.contoso.test",
                                                 detail: "minor 0x96C73A07")
        let sameCode = MigrationServiceError.connection(.authentication, .noCredentials, destination: "hv3.contoso.test")
        let otherStatus = MigrationServiceError.connection(.authentication, .accessDenied, destination: "hv2.contoso.test")
        let otherEnd = MigrationServiceError(kind: .authentication, status: .noCredentials, stage: .destination,
                                             message: a.message, detail: a.detail)
        #expect(a.message != sameCode.message)
        #expect(a == sameCode)
        #expect(a.hashValue == sameCode.hashValue)
        #expect(a != otherStatus)
        #expect(a != otherEnd)
        #expect(Set([a, sameCode, otherStatus, otherEnd]).count == 3)
        #expect(a.code == MigrationServiceError.Code(kind: .authentication, status: 0x8009_030E, stage: .source))
        #expect(a.code.description == "authentication 0x8009030E at the source")
    }

    @Test("endpoints take any literal IPv4 or IPv6 address (loopback is the tests' choice, not a rule); names and bad ports are refused")
    func addresses() throws {
        #expect(try ServiceEndpoint(parsing: "127.0.0.12:6600") == ServiceEndpoint(address: "127.0.0.12", port: 6600))
        #expect(try ServiceEndpoint(parsing: "192.168.10.2:6600") == ServiceEndpoint(address: "192.168.10.2", port: 6600))
        #expect(try ServiceEndpoint(parsing: "[fd00::2]:6600") == ServiceEndpoint(address: "fd00::2", port: 6600))
        #expect(try ServiceEndpoint(address: "fd00::2", port: 6600).description == "[fd00::2]:6600")
        #expect(try ServiceEndpoint(parsing: "10.1.2.3:0").socketAddress().port == 0)
        for bad in ["localhost:1", "127.0.0.1", "127.0.0.1:70000", "fd00::2:6600", "[host.example]:1", "300.1.1.1:5", ":5"] {
            let error = #expect(throws: MigrationServiceError.self) { try ServiceEndpoint(parsing: bad) }
            #expect(error?.status == .invalidArgument, "\(bad)")
        }
        #expect(try MigrationSource(localAddress: "10.0.0.1", vmDirectory: "/tmp").localAddress == "10.0.0.1")
        _ = try ManagementClient(localAddress: "192.168.10.3")
        #expect(throws: MigrationServiceError.self) { try MigrationSource(localAddress: "source.example", vmDirectory: "/tmp") }
        #expect(throws: MigrationServiceError.self) { try ServiceEndpoint.checkLoopback("192.168.10.2") }
    }

    @Test("a host configuration for a real host: an address outside 127.0.0.0/8, QEMU guests, the system keytab by default")
    func realHostConfiguration() throws {
        let directory = NSTemporaryDirectory() + "hostconf-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let json = """
        {"name": "HV02", "fqdn": "hv02.contoso.test", "address": "192.168.10.2", "realm": "CONTOSO.TEST",
         "ccacheDirectory": "/var/lib/migauth/ccaches", "vmDirectory": "/var/lib/migauth/vms",
         "hosts": {"hv01.contoso.test": "192.168.10.1", "hv03.contoso.test": "fd00::3"},
         "incomingNetworks": ["192.168.10.0/24"],
         "qemu": {"runDirectory": "/run/migauth", "accel": "kvm"},
         "virtualMachines": [{"name": "web01", "qemu": {"memoryMiB": 2048, "machine": "q35", "accel": "kvm",
                                                       "extraArguments": ["-smp", "2"]}},
                             {"name": "archive"}]}
        """
        try json.write(toFile: directory + "/hv02.json", atomically: true, encoding: .utf8)
        let c = try HostConfiguration.load(directory + "/hv02.json")
        #expect(c.keytab == "/etc/krb5.keytab")
        #expect(c.address == "192.168.10.2")
        #expect(c.resolve("hv03.contoso.test") == "fd00::3")
        #expect(c.destinationConfiguration.acceptsNetwork("192.168.10.2"))
        #expect(!c.destinationConfiguration.acceptsNetwork("10.0.0.2"), "N1 still decides")
        #expect(c.qemu?.binary == "qemu-system-x86_64" && c.qemu?.machine == "pc" && c.qemu?.accel == "kvm")
        #expect(c.virtualMachines == [VirtualMachineDeclaration(name: "web01", qemu: QEMUMachine(memoryMiB: 2048, machine: "q35", accel: "kvm",
                                                                                                extraArguments: ["-smp", "2"])),
                                      VirtualMachineDeclaration(name: "archive")])
        try c.save(directory + "/copy.json")
        #expect(try HostConfiguration.load(directory + "/copy.json") == c)
        #expect(try ServiceEndpoint(address: c.address, port: c.migrationPort).description == "192.168.10.2:6600")
        // A QEMU guest without qemu settings, a bad machine name, a VM declared twice: refused.
        for (mutate, text) in [({ (c: inout HostConfiguration) in c.qemu = nil }, "no qemu settings"),
                               ({ (c: inout HostConfiguration) in c.virtualMachines[0].qemu?.machine = "pc -S" }, "machine"),
                               ({ (c: inout HostConfiguration) in c.virtualMachines.append(VirtualMachineDeclaration(name: "archive")) }, "twice")] {
            var bad = c
            mutate(&bad)
            let error = #expect(throws: MigrationServiceError.self) { try bad.validate() }
            #expect(error?.message.contains(text) == true, "\(String(describing: error))")
        }
    }

    @Test("the deployment example's two host configurations (docs/deploy) load and name each other")
    func deploymentExample() throws {
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/deploy").path
        let hv01 = try HostConfiguration.load(docs + "/hv01.json")
        let hv02 = try HostConfiguration.load(docs + "/hv02.json")
        #expect(hv01.resolve(hv02.fqdn) == hv02.address && hv02.resolve(hv01.fqdn) == hv01.address)
        #expect(hv02.destinationConfiguration.acceptsNetwork(hv02.address) && hv01.destinationConfiguration.acceptsNetwork(hv01.address))
        #expect(hv01.keytab == HostConfiguration.systemKeytab)
        #expect(hv01.virtualMachines.first?.qemu?.memoryMiB == 4096)
    }

    @Test("protocol 2's offer carries the VM kind before P4's optional generation; a version 1 offer (no kind byte) is a state file")
    func offerKinds() throws {
        let id = MigrationID.random()
        let live = MigrationOffer(id: id, vm: "g", size: 320 << 20, sha256: Array(repeating: 0, count: 32), performance: .tcpIP,
                                  channels: 1, chunkSize: 1 << 20, vmKind: .qemuLive)
        var b = ByteBuffer()
        WireMessage.offer(live).encode(into: &b, version: 2)
        #expect(try WireMessage.decode(b, version: 2) == .offer(live))
        // Version 1 lays the same offer out without the kind byte, and reads it back as a state file.
        var b1 = ByteBuffer()
        WireMessage.offer(live).encode(into: &b1, version: 1)
        #expect(b1.readableBytes == b.readableBytes - 1)
        guard case .offer(let decoded) = try WireMessage.decode(b1, version: 1) else { Issue.record("not an offer"); return }
        #expect(decoded.kind == .stateFile && decoded.vmKind == nil)
        // A version 2 offer with the kind byte cut off is refused.
        #expect(throws: WireDecodingError.self) { try WireMessage.decode(b1, version: 2) }
        // P4's generation comes last on both versions; cut off, it is an older peer's offer.
        var withGeneration = live
        withGeneration.sourceGeneration = "2016"
        for version: UInt16 in [1, 2] {
            var g = ByteBuffer()
            WireMessage.offer(withGeneration).encode(into: &g, version: version)
            guard case .offer(let o) = try WireMessage.decode(g, version: version) else { Issue.record("not an offer"); return }
            #expect(o.sourceGeneration == "2016" && o.kind == (version == 2 ? .qemuLive : .stateFile))
            let plain = g.getSlice(at: 0, length: version == 2 ? b.readableBytes : b1.readableBytes) ?? ByteBuffer()
            guard case .offer(let old) = try WireMessage.decode(plain, version: version) else { Issue.record("not an offer"); return }
            #expect(old.sourceGeneration == nil)
        }
        b.setInteger(UInt8(7), at: b.writerIndex - 1)
        #expect(throws: WireDecodingError.self) { try WireMessage.decode(b, version: 2) }
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
        bad.hosts["evil.test"] = "evil.example"
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
            // Protocol version 3, purpose 3: the outcome of a live move's commit.
            .hello(minVersion: 3, maxVersion: 3, purpose: .outcome, authentication: .kerberos),
            .outcomeQuery(id: id, vm: "vm é"), .outcome(.committed), .outcome(.notCommitted),
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
        // An outcome other than 1 and 2, and a purpose other than 1–3, are refused.
        #expect(throws: WireDecodingError.self) { try WireMessage.decode(ByteBuffer(bytes: [0x19, 0])) }
        #expect(throws: WireDecodingError.self) { try WireMessage.decode(ByteBuffer(bytes: [0x19, 3])) }
        #expect(throws: WireDecodingError.self) {
            try WireMessage.decode(ByteBuffer(bytes: [0x01] + WireProtocol.magic + [0, 3, 0, 3, 4, 1]))
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
