import WindowsStatus

/// A CredSSP failure: what went wrong, the Windows status a Windows peer would report, and an explanation.
public struct CredSSPError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The failure family.
    public enum Kind: String, Sendable, Hashable {
        /// Bytes that are not a valid DER message of the expected type.
        case malformedMessage
        /// A message or field over the policy's size limits.
        case sizeLimitExceeded
        /// The peer's protocol version is below the policy's minimum.
        case versionRefused
        /// The TLS layer failed (handshake, record, or peer certificate).
        case tls
        /// The server certificate failed verification or pinning.
        case serverCertificateRejected
        /// The peer's `pubKeyAuth` does not match the TLS server key (possible man in the middle).
        case publicKeyMismatch
        /// The inner (SPNEGO/Kerberos/NTLM) authentication failed.
        case innerAuthenticationFailed
        /// The peer sent an `errorCode`.
        case peerReportedError
        /// A message that does not fit the protocol state.
        case unexpectedMessage
        /// `authInfo` was missing, of an unsupported type, or unreadable.
        case invalidCredentials
        /// The state machine was used after it finished or failed.
        case invalidState
        /// The transport failed or closed before the exchange finished (``CredSSPServer/run(frames:send:)``).
        case transport
        /// RDP's X.224 security negotiation in front of CredSSP failed (``CredSSPServer/runRDP(inbound:outbound:)``).
        case rdpNegotiation
    }

    public let kind: Kind
    /// The Windows status (HRESULT) for this failure, as sent in `errorCode`.
    public let status: WindowsStatus
    /// A human explanation of the cause.
    public let explanation: String
    /// A final message for the peer (a ``TSRequest`` with `errorCode`), when the protocol has one: send it before
    /// closing the transport.
    public let replyToPeer: [UInt8]?

    public init(_ kind: Kind, _ status: WindowsStatus, _ explanation: String, replyToPeer: [UInt8]? = nil) {
        self.kind = kind
        self.status = status
        self.explanation = explanation
        self.replyToPeer = replyToPeer
    }

    /// The same error with a reply for the peer attached.
    func replying(_ bytes: [UInt8]?) -> CredSSPError {
        CredSSPError(kind, status, explanation, replyToPeer: bytes)
    }

    public var description: String {
        "CredSSP \(kind.rawValue): \(explanation) — \(status.windowsMessage)"
    }
}

extension CredSSPError {
    static func malformed(_ what: String, _ error: any Error) -> CredSSPError {
        CredSSPError(.malformedMessage, .invalidToken, "The peer's \(what) is not valid DER: \(error)")
    }

    static func tooLarge(_ what: String, _ size: Int, limit: Int) -> CredSSPError {
        CredSSPError(.sizeLimitExceeded, .invalidToken, "The peer's \(what) has \(size), over the limit of \(limit)")
    }

    static func unexpected(_ what: String) -> CredSSPError {
        CredSSPError(.unexpectedMessage, .illegalMessage, what)
    }

    static func transport(_ what: String, _ error: (any Error)? = nil) -> CredSSPError {
        CredSSPError(.transport, .connectionReset, error.map { "\(what): \($0)" } ?? what)
    }

    static func peer(_ code: UInt32) -> CredSSPError {
        let status = WindowsStatus.known(code) ?? WindowsStatus(code: code, symbol: "HRESULT", text: "Unknown status")
        return CredSSPError(.peerReportedError, status, "The peer reported \(status.symbol) \(status.hex)")
    }
}
