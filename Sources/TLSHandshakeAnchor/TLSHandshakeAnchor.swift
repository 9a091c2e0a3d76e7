import CNIOBoringSSL

/// The anchor of the CredSSP benchmark's TLS part: a TLS 1.3 handshake, client and server in memory, in BoringSSL as
/// vendored by swift-nio-ssl (the library the CredSSP module's TLS runs on), called directly with memory BIOs: no NIO,
/// no Swift concurrency, contexts made once.
///
/// A target of its own because it must not see the system OpenSSL: BoringSSL's functions keep their C names in Swift
/// (`#pragma redefine_extname` gives them the `CNIOBoringSSL_` symbols), so in a module that also imports OpenSSL's
/// headers (KerberosCrypto's `CLibCrypto`) a call such as `BIO_free` binds to OpenSSL's symbol. Bench-only, not product
/// code: the one place outside swift-nio-ssl that calls BoringSSL.
public struct HandshakeError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// One client and one server `SSL_CTX`, made once (as the CredSSP client and server keep theirs).
public final class TLSPair {
    let client: OpaquePointer
    let server: OpaquePointer

    /// `certificatePEM`/`keyPEM`: the server's certificate and RSA key, as the CredSSP server loads them.
    public init(certificatePEM: [UInt8], keyPEM: [UInt8]) throws {
        guard let client = SSL_CTX_new(TLS_method()), let server = SSL_CTX_new(TLS_method()) else {
            throw HandshakeError("SSL_CTX_new failed")
        }
        self.client = client
        self.server = server
        // swift-nio-ssl's default groups (X25519MLKEM768 first), TLS 1.3 only, as the CredSSP bench's policy.
        let groups: [UInt16] = [0x11EC, 29, 23, 24]
        for context in [client, server] {
            guard SSL_CTX_set_min_proto_version(context, UInt16(TLS1_3_VERSION)) == 1,
                  SSL_CTX_set_max_proto_version(context, UInt16(TLS1_3_VERSION)) == 1,
                  groups.withUnsafeBufferPointer({ SSL_CTX_set1_group_ids(context, $0.baseAddress, $0.count) }) == 1
            else { throw HandshakeError("cannot configure the TLS context") }
        }
        SSL_CTX_set_verify(client, SSL_VERIFY_NONE, nil)
        let certificate = certificatePEM.withUnsafeBytes { raw -> OpaquePointer? in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, raw.count) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_X509(bio, nil, nil, nil)
        }
        let key = keyPEM.withUnsafeBytes { raw -> OpaquePointer? in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, raw.count) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_PrivateKey(bio, nil, nil, nil)
        }
        guard let certificate, let key else { throw HandshakeError("cannot read the PEM certificate or key") }
        defer {
            X509_free(certificate)
            EVP_PKEY_free(key)
        }
        guard SSL_CTX_use_certificate(server, certificate) == 1, SSL_CTX_use_PrivateKey(server, key) == 1 else {
            throw HandshakeError("cannot install the certificate and key")
        }
    }

    deinit {
        SSL_CTX_free(client)
        SSL_CTX_free(server)
    }

    /// One full handshake, client and server in memory, with the records handed over as CredSSP hands them.
    public func handshake() throws {
        guard let clientSSL = SSL_new(client), let serverSSL = SSL_new(server) else { throw HandshakeError("SSL_new failed") }
        defer {
            SSL_free(clientSSL)
            SSL_free(serverSSL)
        }
        guard let clientIn = BIO_new(BIO_s_mem()), let clientOut = BIO_new(BIO_s_mem()),
              let serverIn = BIO_new(BIO_s_mem()), let serverOut = BIO_new(BIO_s_mem())
        else { throw HandshakeError("BIO_new failed") }
        SSL_set_bio(clientSSL, clientIn, clientOut)
        SSL_set_bio(serverSSL, serverIn, serverOut)
        SSL_set_connect_state(clientSSL)
        SSL_set_accept_state(serverSSL)
        var buffer = [UInt8](repeating: 0, count: 16_384)
        func move(_ from: OpaquePointer, _ to: OpaquePointer) {
            while true {
                let count = buffer.withUnsafeMutableBytes { BIO_read(from, $0.baseAddress, Int32($0.count)) }
                guard count > 0 else { return }
                _ = buffer.withUnsafeBytes { BIO_write(to, $0.baseAddress, count) }
            }
        }
        var clientDone = false
        var serverDone = false
        for _ in 0..<10 where !(clientDone && serverDone) {
            if !clientDone { clientDone = try step(clientSSL) }
            move(clientOut, serverIn)
            if !serverDone { serverDone = try step(serverSSL) }
            move(serverOut, clientIn)
        }
        guard clientDone, serverDone, SSL_version(clientSSL) == TLS1_3_VERSION else {
            throw HandshakeError("the TLS 1.3 handshake did not finish")
        }
    }

    private func step(_ ssl: OpaquePointer) throws -> Bool {
        let result = SSL_do_handshake(ssl)
        if result == 1 { return true }
        guard SSL_get_error(ssl, result) == SSL_ERROR_WANT_READ else { throw HandshakeError("SSL_do_handshake failed") }
        return false
    }
}
