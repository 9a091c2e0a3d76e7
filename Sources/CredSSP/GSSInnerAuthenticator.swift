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
        let out: [UInt8]?
        do {
            out = try context.step(token ?? []).token
        } catch {
            if let token, NTLMLogonFailure.isAuthenticateMessage(token) { throw NTLMLogonFailure(cause: error) }
            throw error
        }
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

/// An NTLM AUTHENTICATE message the acceptor refused: wrong password or unknown user, SEC_E_LOGON_DENIED as on
/// Windows. gss-ntlmssp reports it as GSS_S_FAILURE with an errno-like minor code ("Invalid argument").
public struct NTLMLogonFailure: Error, WindowsStatusReporting, CustomStringConvertible {
    /// The GSS error behind it.
    public let cause: GSSError
    public var windowsStatus: WindowsStatus { .logonDenied }

    init(cause: GSSError) { self.cause = cause }

    public var description: String {
        "The NTLM AUTHENTICATE message was refused (wrong password or unknown user): \(cause)"
    }

    /// NTLMSSP message type 3, bare or inside SPNEGO: the signature "NTLMSSP\0" followed by type 3 (LE).
    static func isAuthenticateMessage(_ token: [UInt8]) -> Bool {
        let signature: [UInt8] = Array("NTLMSSP".utf8) + [0, 3, 0, 0, 0]
        guard token.count >= signature.count else { return false }
        return (0...(token.count - signature.count)).contains { token[$0..<($0 + signature.count)].elementsEqual(signature) }
    }
}
