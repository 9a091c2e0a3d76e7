import GSS
import MigrationVocabulary
import WindowsStatus

/// Which end of a migration failed (the simulator's type: `Source` or `Destination`).
public typealias MigrationStage = Stage

/// A failed migration, move request or daemon operation: what Hyper-V would show, and why.
public struct MigrationServiceError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure.
    public enum Kind: UInt8, Sendable, Hashable {
        /// Kerberos could not authenticate (no credentials, refused S4U2Proxy, KDC down, stale keytab…).
        case authentication = 1
        /// Authenticated but not allowed (P1).
        case authorization = 2
        /// The destination refused the connection (N1) or it could not be made.
        case connection = 3
        /// The peer broke the protocol (garbage, oversized frame, wrong version, bad sequence).
        case protocolViolation = 4
        /// The data did not arrive intact (SHA-256 mismatch, altered or replayed message).
        case integrity = 5
        /// Local files: VM missing, already present, disk errors.
        case storage = 6
        /// Bad configuration or argument (non-loopback address, unknown host).
        case configuration = 7
        /// The peer closed the connection or stopped answering.
        case connectionLost = 8
        /// The link died after the source let go (commit sent) and before the destination confirmed: the VM is
        /// paused or unregistered at the source and may be running at the destination. The message says what to check.
        case uncertain = 9
    }

    public var kind: Kind
    /// The HRESULT and its Windows text.
    public var status: WindowsStatus
    /// Where it failed.
    public var stage: MigrationStage
    /// The text Hyper-V shows (headline and reason), e.g. the seed's two lines for 0x8009030E.
    public var message: String
    /// Diagnostic detail (GSS/krb5 messages, the protocol violation, the path).
    public var detail: String
    /// The GSS failure behind it, when there is one (on the side that saw it).
    public var gssError: GSSError?

    public init(kind: Kind, status: WindowsStatus, stage: MigrationStage, message: String, detail: String = "",
                gssError: GSSError? = nil) {
        self.kind = kind
        self.status = status
        self.stage = stage
        self.message = message
        self.detail = detail
        self.gssError = gssError
    }

    public var description: String { detail.isEmpty ? message : message + "\n" + detail }
}

extension MigrationServiceError {
    /// A failure with Hyper-V's headline and one reason line: `headline(stage)\n<reason>: <status text (code)>`.
    static func failure(_ kind: Kind, _ status: WindowsStatus, stage: MigrationStage, reason: String,
                        detail: String = "", gss: GSSError? = nil) -> MigrationServiceError {
        MigrationServiceError(kind: kind, status: status, stage: stage,
                              message: MigrationMessages.failure(stage: stage, reason: reason, status: status),
                              detail: detail, gssError: gss)
    }

    /// The source could not establish the connection to `destination` (the seed's form).
    public static func connection(_ kind: Kind, _ status: WindowsStatus, destination: String, detail: String = "",
                           gss: GSSError? = nil) -> MigrationServiceError {
        MigrationServiceError(kind: kind, status: status, stage: .source,
                              message: MigrationMessages.connectionFailure(destination: destination, status: status),
                              detail: detail, gssError: gss)
    }

    static func protocolViolation(_ what: String, stage: MigrationStage) -> MigrationServiceError {
        .failure(.protocolViolation, .illegalMessage, stage: stage, reason: "Protocol error", detail: what)
    }

    static func connectionLost(_ what: String, stage: MigrationStage) -> MigrationServiceError {
        .failure(.connectionLost, .connectionReset, stage: stage, reason: "The connection was lost", detail: what)
    }

    /// A bad argument or configuration (`E_INVALIDARG`).
    public static func configuration(_ what: String, stage: MigrationStage) -> MigrationServiceError {
        .failure(.configuration, .invalidArgument, stage: stage, reason: what)
    }

    /// The user's credential could not be acquired (e.g. no ccache): the seed's connection message
    /// naming `destination`, with the GSS failure's status (0x8009030E for missing credentials).
    public static func credentialUnavailable(_ error: GSSError, destination: String) -> MigrationServiceError {
        .connection(.authentication, error.windowsStatus, destination: destination, detail: error.description, gss: error)
    }

    /// As it travels in an error frame.
    var wire: WireError {
        WireError(status: status.code, stage: stage == .source ? 1 : 2, kind: kind.rawValue,
                  windowsText: status.text, message: PeerText.withoutPaths(message), detail: PeerText.withoutPaths(detail))
    }

    /// Rebuilt from an error frame.
    init(wire e: WireError) {
        let status = WindowsStatus.known(e.status) ?? WindowsStatus(code: e.status, symbol: "HRESULT", text: e.windowsText)
        self.init(kind: Kind(rawValue: e.kind) ?? .protocolViolation, status: status,
                  stage: e.stage == 1 ? .source : .destination, message: e.message, detail: e.detail)
    }
}
