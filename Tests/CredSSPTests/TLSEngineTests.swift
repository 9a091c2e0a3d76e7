@testable import CredSSP
import NIOSSL
import Testing

/// The in-memory TLS engine on its own.
@Suite struct TLSEngineTests {
    @Test func handshakeInMemory() async throws {
        let certs = try TestCertificates.get()
        var clientConfig = TLSConfiguration.makeClientConfiguration()
        clientConfig.certificateVerification = .none
        let client = try await TLSEngine.client(configuration: clientConfig, serverHostname: nil)
        let server = try await TLSEngine.server(configuration: .makeServerConfiguration(
            certificateChain: certs.selfSignedChain.map { .certificate($0) }, privateKey: .privateKey(certs.selfSignedKey)))
        var toServer = try await client.drainRecords()
        for _ in 0..<5 where !(client.handshakeComplete && server.handshakeComplete) {
            try await server.feed(toServer)
            let toClient = try await server.drainRecords()
            try await client.feed(toClient)
            toServer = try await client.drainRecords()
        }
        #expect(client.handshakeComplete)
        #expect(server.handshakeComplete)
        try await client.write([1, 2, 3])
        try await server.feed(try await client.drainRecords())
        #expect(try await server.readPlaintext() == [1, 2, 3])
        #expect(try await client.peerCertificateDER() == (try certs.selfSignedChain[0].toDERBytes()))
    }
}
