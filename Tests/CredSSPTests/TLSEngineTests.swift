@testable import CredSSP
import NIOSSL
import Testing

/// The in-memory TLS engine on its own, on one thread as the CredSSP actors use it.
@Suite struct TLSEngineTests {
    /// Runs synchronous code on a ``CredSSPSessionThread`` (the engine's `EmbeddedChannel` is bound to one thread).
    actor SessionHost {
        private let thread = CredSSPSessionThread()
        nonisolated var unownedExecutor: UnownedSerialExecutor { thread.asUnownedSerialExecutor() }
        deinit { thread.stop() }

        func run<T: Sendable>(_ body: @Sendable () throws -> T) throws -> T {
            #expect(thread.isCurrent)
            return try body()
        }
    }

    @Test func handshakeInMemory() async throws {
        let certs = try TestCertificates.get()
        let (plaintext, peerCertificate) = try await SessionHost().run {
            var clientConfig = TLSConfiguration.makeClientConfiguration()
            clientConfig.certificateVerification = .none
            let client = try TLSEngine.client(configuration: clientConfig, serverHostname: nil)
            let server = try TLSEngine.server(configuration: .makeServerConfiguration(
                certificateChain: certs.selfSignedChain.map { .certificate($0) }, privateKey: .privateKey(certs.selfSignedKey)))
            var toServer = try client.drainRecords()
            for _ in 0..<5 where !(client.handshakeComplete && server.handshakeComplete) {
                try server.feed(toServer)
                try client.feed(try server.drainRecords())
                toServer = try client.drainRecords()
            }
            #expect(client.handshakeComplete)
            #expect(server.handshakeComplete)
            try client.write([1, 2, 3])
            try server.feed(try client.drainRecords())
            return (try server.readPlaintext(), try client.peerCertificateDER())
        }
        #expect(plaintext == [1, 2, 3])
        #expect(peerCertificate == (try certs.selfSignedChain[0].toDERBytes()))
    }
}

/// The key CredSSP binds, read by swift-certificates, against BoringSSL's own reading of the same certificate.
@Suite struct CertificatePublicKeyTests {
    @Test func publicKeyMatchesBoringSSL() throws {
        let certs = try TestCertificates.get()
        for certificate in [certs.selfSignedChain[0], certs.issuedChain[0]] {
            let key = try CertificatePublicKey(certificateDER: try certificate.toDERBytes())
            let spki = try certificate.extractPublicKey().toSPKIBytes()
            #expect(key.subjectPublicKeyInfo == spki)
            // The BIT STRING's bits (an RSAPublicKey SEQUENCE) end the SubjectPublicKeyInfo.
            #expect(key.subjectPublicKey.first == 0x30)
            #expect(Array(spki.suffix(key.subjectPublicKey.count)) == key.subjectPublicKey)
        }
    }

    @Test func notACertificateIsATypedError() {
        #expect(throws: CredSSPError.self) { try CertificatePublicKey(certificateDER: [0x30, 0x03, 0x02, 0x01, 0x01]) }
    }
}
