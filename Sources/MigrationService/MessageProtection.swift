import GSS

/// Per-message protection of an established security context: seal (wrap with confidentiality and
/// integrity, rule S1) and unseal in place. Kerberos contexts (initiator or acceptor) implement
/// it; another sign-on kind (CredSSP) can supply its own.
///
/// Not `Sendable`: a context is used by one task at a time (the connection's task).
protocol MessageProtection: AnyObject {
    /// Encrypts `data` in place; returns what goes before and after it on the wire.
    func seal(_ data: UnsafeMutableRawBufferPointer) throws(GSSError) -> GSSWrappedIOV
    /// Verifies and decrypts a whole sealed token in place; the plaintext is at the returned range.
    func unseal(_ token: UnsafeMutableRawBufferPointer) throws(GSSError) -> GSSUnwrappedIOV
}

/// The source's side of a Kerberos context.
final class InitiatorProtection: MessageProtection {
    private var context: GSSInitiatorContext

    init(_ context: consuming GSSInitiatorContext) { self.context = context }

    func seal(_ data: UnsafeMutableRawBufferPointer) throws(GSSError) -> GSSWrappedIOV {
        try context.wrapInPlace(data, encrypt: true)
    }

    func unseal(_ token: UnsafeMutableRawBufferPointer) throws(GSSError) -> GSSUnwrappedIOV {
        try context.unwrapInPlace(token)
    }
}

/// The destination's (or management service's) side of a Kerberos context.
final class AcceptorProtection: MessageProtection {
    private var context: GSSAcceptorContext

    init(_ context: consuming GSSAcceptorContext) { self.context = context }

    func seal(_ data: UnsafeMutableRawBufferPointer) throws(GSSError) -> GSSWrappedIOV {
        try context.wrapInPlace(data, encrypt: true)
    }

    func unseal(_ token: UnsafeMutableRawBufferPointer) throws(GSSError) -> GSSUnwrappedIOV {
        try context.unwrapInPlace(token)
    }
}
