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

/// Either side of a Kerberos context (the source's initiator, the destination's or management
/// service's acceptor), owned by the connection that authenticated with it: suite 1 wraps with it,
/// suite 2 derives its keys from it.
final class ContextProtection<Context: GSSSecurityContext & ~Copyable>: MessageProtection, KeyDerivingContext {
    private var context: Context

    init(_ context: consuming Context) { self.context = context }

    func seal(_ data: UnsafeMutableRawBufferPointer) throws(GSSError) -> GSSWrappedIOV {
        try context.wrapInPlace(data, encrypt: true)
    }

    func unseal(_ token: UnsafeMutableRawBufferPointer) throws(GSSError) -> GSSUnwrappedIOV {
        try context.unwrapInPlace(token)
    }

    /// GSS_Pseudo_random with the full key (suite 2's key derivation).
    func pseudoRandom(_ input: [UInt8], length: Int) throws(GSSError) -> [UInt8] {
        try context.pseudoRandom(prfKey: .full, input: input, outputLength: length)
    }
}

/// The source's side of a Kerberos context.
typealias InitiatorProtection = ContextProtection<GSSInitiatorContext>
/// The destination's (or management service's) side of a Kerberos context.
typealias AcceptorProtection = ContextProtection<GSSAcceptorContext>
