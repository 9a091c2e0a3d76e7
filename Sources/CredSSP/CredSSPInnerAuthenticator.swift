import WindowsStatus

/// The inner authentication that CredSSP runs inside TLS (SPNEGO with Kerberos or NTLM), one side of it.
///
/// CredSSP drives it like SSPI: ``step(_:)`` with the peer's token until ``isComplete``, then ``wrap(_:)`` and
/// ``unwrap(_:)`` (with confidentiality) for `pubKeyAuth` and `authInfo`. Calls may block (a KDC exchange);
/// the CredSSP state machine makes them one at a time, on its session thread (never a NIO event loop or a thread
/// of Swift's cooperative pool).
public protocol CredSSPInnerAuthenticator: AnyObject {
    /// Consumes the peer's token (`nil` for an initiator's first call) and returns the token to send, if any.
    func step(_ token: [UInt8]?) throws -> [UInt8]?
    /// True once the context is established.
    var isComplete: Bool { get }
    /// Encrypts and integrity-protects `message`.
    func wrap(_ message: [UInt8]) throws -> [UInt8]
    /// Decrypts and verifies `message`.
    func unwrap(_ message: [UInt8]) throws -> [UInt8]
    /// The Windows status that describes `error` (thrown by this authenticator).
    func windowsStatus(for error: any Error) -> WindowsStatus
    /// Forgets key material and credentials held by the context.
    func dispose()
}

extension CredSSPInnerAuthenticator {
    public func windowsStatus(for error: any Error) -> WindowsStatus {
        (error as? any WindowsStatusReporting)?.windowsStatus ?? .logonDenied
    }

    public func dispose() {}
}

/// An error that knows its Windows status.
public protocol WindowsStatusReporting: Error {
    var windowsStatus: WindowsStatus { get }
}

extension CredSSPError: WindowsStatusReporting {
    public var windowsStatus: WindowsStatus { status }
}
