import GSS

/// What a CredSSP exchange must cost at least, measured in the same run as the exchange: a TLS 1.3 handshake with the
/// same RSA key in the TLS library the Swift side uses (`TLSHandshakeAnchor.TLSPair`: BoringSSL as vendored by
/// swift-nio-ssl, called directly with memory BIOs) plus the two Kerberos contexts here (SPNEGO initiator and acceptor
/// with the same credentials and flags as `GSSInitiatorAuthenticator`/`GSSAcceptorAuthenticator`, to completion).
enum CredSSPAnchor {
    struct AnchorError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// SPNEGO (Kerberos) initiator and acceptor stepped to completion in memory.
    static func kerberosContexts(user: GSSCredential, acceptor: GSSCredential, target: GSSName) throws {
        var initiator = GSSInitiatorContext(target: target, credential: user, mechanism: .spnego,
                                            flags: [.mutual, .integrity, .confidentiality, .sequence])
        var accepting = GSSAcceptorContext(credential: acceptor)
        var token = try initiator.step(nil).token
        for _ in 0..<6 {
            guard let toAcceptor = token else { break }
            let answer = try accepting.step(toAcceptor)
            guard let toInitiator = answer.token, !initiator.isComplete else { break }
            token = try initiator.step(toInitiator).token
        }
        guard initiator.isComplete, accepting.isComplete else { throw AnchorError("the Kerberos contexts did not complete") }
    }
}
