import GSS
import WindowsStatus

/// The CredSSP client's inner authentication through GSSAPI (default: SPNEGO, which picks Kerberos).
public final class GSSInitiatorAuthenticator: CredSSPInnerAuthenticator {
    private var context: GSSInitiatorContext
    private var disposed = false

    /// - Parameters:
    ///   - target: the server's service name (for example `TERMSRV@hostb.test`, host-based).
    ///   - credential: the user's credential (nil: the default ccache).
    public init(target: GSSName, credential: GSSCredential? = nil, mechanism: GSSMechanism = .spnego) {
        context = GSSInitiatorContext(target: target, credential: credential, mechanism: mechanism,
                                      flags: [.mutual, .integrity, .confidentiality, .sequence])
    }

    public var isComplete: Bool { !disposed && context.isComplete }

    public func step(_ token: [UInt8]?) throws -> [UInt8]? {
        guard !disposed else { throw Self.disposed }
        return try context.step(token).token
    }

    public func wrap(_ message: [UInt8]) throws -> [UInt8] {
        guard !disposed else { throw Self.disposed }
        return try context.wrap(message, encrypt: true)
    }

    public func unwrap(_ message: [UInt8]) throws -> [UInt8] {
        guard !disposed else { throw Self.disposed }
        return try context.unwrap(message).message
    }

    public func windowsStatus(for error: any Error) -> WindowsStatus {
        (error as? GSSError)?.windowsStatus ?? (error as? CredSSPError)?.status ?? .logonDenied
    }

    public func dispose() { disposed = true }

    static let disposed = CredSSPError(.invalidState, .invalidHandle, "The GSS context was disposed")
}

/// The CredSSP server's inner authentication through GSSAPI (accepts SPNEGO or bare Kerberos).
public final class GSSAcceptorAuthenticator: CredSSPInnerAuthenticator {
    private var context: GSSAcceptorContext
    private var disposed = false
    /// The authenticated client, once complete.
    public private(set) var peerName: GSSName?

    /// - Parameter credential: the service's acceptor credential (nil: the default keytab).
    public init(credential: GSSCredential? = nil) {
        context = GSSAcceptorContext(credential: credential)
    }

    public var isComplete: Bool { !disposed && context.isComplete }

    public func step(_ token: [UInt8]?) throws -> [UInt8]? {
        guard !disposed else { throw GSSInitiatorAuthenticator.disposed }
        // A refused NTLM AUTHENTICATE message is SEC_E_LOGON_DENIED in GSSError's own mapping.
        let out = try context.step(token ?? []).token
        if context.isComplete { peerName = context.peerName }
        return out
    }

    public func wrap(_ message: [UInt8]) throws -> [UInt8] {
        guard !disposed else { throw GSSInitiatorAuthenticator.disposed }
        return try context.wrap(message, encrypt: true)
    }

    public func unwrap(_ message: [UInt8]) throws -> [UInt8] {
        guard !disposed else { throw GSSInitiatorAuthenticator.disposed }
        return try context.unwrap(message).message
    }

    public func windowsStatus(for error: any Error) -> WindowsStatus {
        (error as? GSSError)?.windowsStatus ?? (error as? any WindowsStatusReporting)?.windowsStatus ?? .logonDenied
    }

    public func dispose() { disposed = true }
}
