import CredSSP
import Testing
import WindowsStatus

/// RDP's X.224 negotiation in front of CredSSP: known bytes from FreeRDP, and the Swift client's RDP side against
/// the Swift server's RDP endpoint over raw loopback TCP (Kerberos inside SPNEGO, the shared test realm).
@Suite struct RDPEndpointTests {
    /// The Connection Request `xfreerdp /u:alice` 2.11.7 sent here: cookie, then RDP_NEG_REQ offering TLS | CredSSP.
    static let freeRDPRequest: [UInt8] = hex(
        "0300002b26e00000000000436f6f6b69653a206d737473686173683d616c6963650d0a0100080003000000")

    static func hex(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            bytes.append(UInt8(text[index..<next], radix: 16) ?? 0)
            index = next
        }
        return bytes
    }

    @Test func connectionRequestFromFreeRDPDecodesAndReencodes() throws {
        let request = try RDPConnectionRequest(x224: Self.freeRDPRequest)
        #expect(request.cookie == "alice")
        #expect(request.requestedProtocols == [.ssl, .hybrid])
        #expect(request.flags == 0)
        #expect(request.x224Bytes == Self.freeRDPRequest)
    }

    @Test func confirmsRoundTrip() throws {
        for confirm in [RDPConnectionConfirm.selected(.hybrid, flags: 0x1F), .failure(code: RDPConnectionConfirm.hybridRequiredByServer), .legacy] {
            #expect(try RDPConnectionConfirm(x224: confirm.x224Bytes) == confirm)
        }
        // RDP_NEG_RSP selecting PROTOCOL_HYBRID, as Windows sends it (TPKT 19 bytes).
        #expect(RDPConnectionConfirm.selected(.hybrid, flags: 0).x224Bytes
                == Self.hex("030000130ed000001234000200080002000000"))
    }

    @Test func malformedNegotiationIsATypedError() {
        var wrongVersion = Self.freeRDPRequest
        wrongVersion[0] = 2
        var shortLength = Self.freeRDPRequest
        shortLength[3] = 0x20
        var badNegotiation = Self.freeRDPRequest
        badNegotiation[badNegotiation.count - 6] = 9  // RDP_NEG_REQ length field
        for bytes in [wrongVersion, shortLength, badNegotiation, Array(Self.freeRDPRequest.prefix(10)), []] {
            #expect(throws: CredSSPError.self) { try RDPConnectionRequest(x224: bytes) }
        }
    }

    @Test func swiftClientToSwiftServerOverRDP() async throws {
        let service = try await KerberosService.make()
        let server = try service.server(policy: CredSSPPolicy())
        let client = try await PyspnegoInteropTests.kerberosClient(service)
        let (listener, port) = try await RawLoopback.listen()
        async let served = RawLoopback.serveRDP(server, on: listener)
        let result = try await RawLoopback.runRDPClient(client, port: port, request: RDPConnectionRequest(cookie: service.user))
        let outcome = try #require(try await served)
        #expect(result.failure == nil, "\(String(describing: result.failure))")
        let credentials = try outcome.result.get()
        #expect(credentials.user == service.user)
        #expect(credentials.password == service.password)
        #expect(outcome.request?.cookie == service.user)
        #expect(await server.negotiatedVersion == 6)
        #expect(await client.serverVersion == 6)
    }

    @Test func clientWithoutCredSSPIsRefusedOnBothSides() async throws {
        let service = try await KerberosService.make()
        let server = try service.server(policy: CredSSPPolicy())
        let client = try await PyspnegoInteropTests.kerberosClient(service)
        let (listener, port) = try await RawLoopback.listen()
        async let served = RawLoopback.serveRDP(server, on: listener)
        let result = try await RawLoopback.runRDPClient(client, port: port, request: RDPConnectionRequest(requestedProtocols: [.ssl]))
        let outcome = try #require(try await served)
        #expect(outcome.result.failure?.kind == .rdpNegotiation)
        #expect(result.failure?.kind == .rdpNegotiation)
        #expect(result.failure?.status == .unsupportedFunction)
        #expect(result.failure?.explanation.contains("code 5") == true, "\(String(describing: result.failure))")
    }
}
