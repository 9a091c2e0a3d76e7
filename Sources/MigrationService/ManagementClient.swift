import GSS

/// A user on a workstation asking a source host's management service to move a VM.
public struct ManagementClient: Sendable {
    /// The workstation's loopback address (connections originate from it).
    public var localAddress: String

    public init(localAddress: String) throws(MigrationServiceError) {
        try ServiceEndpoint.checkAddress(localAddress)
        self.localAddress = localAddress
    }

    /// The source to ask: its FQDN (SPN `host/<fqdn>[@realm]`) and management endpoint.
    public typealias Source = MigrationTarget

    /// Asks `source` to move `vm` to `destination` (its FQDN; `endpoint` nil: the source resolves
    /// it through its hosts table, on `port` or 6600), signing on with `credential` (the user's own,
    /// forwardable; nil: the default ccache). Throws the source's error as Hyper-V shows it.
    public func requestMove(vm: String, destination: String, endpoint: ServiceEndpoint?, port: Int? = nil, via source: Source,
                            credential: GSSCredential?, performance: PerformanceOption? = nil, channels: Int = 0,
                            progress: (@Sendable (MigrationProgress) async -> Void)? = nil) async throws(MigrationServiceError) -> MigrationReport {
        try await withSession(via: source, signOn: .kerberos(credential)) { session throws(MigrationServiceError) in
            try await session.requestMove(vm: vm, destination: destination, endpoint: endpoint, port: port,
                                          performance: performance, channels: channels, progress: progress)
        }
    }

    /// Signs on to `source` (a remote shell: Kerberos or CredSSP), runs `body` with the session — any number of
    /// move requests, one at a time — then signs off and closes; the source wipes delivered credentials then.
    public func withSession<R: Sendable>(via source: Source, signOn: MigrationAuthentication,
                                         _ body: (ManagementSession) async throws(MigrationServiceError) -> R) async throws(MigrationServiceError) -> R {
        let name = try source.targetName(service: "host")
        return try await MigrationSource.connect(from: localAddress, to: source) { conn throws(MigrationServiceError) in
            let principal = try await signOn.authenticate(conn, purpose: .management, target: name, destinationName: source.fqdn)
            let session = ManagementSession(conn: conn, principal: principal)
            let result = try await body(session)
            try? await conn.send(.signOff)
            return result
        }
    }
}


/// A signed-on management connection (inside ``ManagementClient/withSession(via:signOn:_:)``).
public final class ManagementSession {
    private let conn: FrameConnection
    /// The user the source authenticated.
    public let principal: String

    init(conn: FrameConnection, principal: String) {
        self.conn = conn
        self.principal = principal
    }

    /// Asks the source to move `vm` to `destination` (its FQDN; `endpoint` nil: the source resolves it through its
    /// hosts table, on `port` or 6600). Throws the source's error as Hyper-V shows it; the session stays usable.
    public func requestMove(vm: String, destination: String, endpoint: ServiceEndpoint?, port: Int? = nil,
                            performance: PerformanceOption? = nil, channels: Int = 0,
                            progress: (@Sendable (MigrationProgress) async -> Void)? = nil) async throws(MigrationServiceError) -> MigrationReport {
        let request = MoveRequestMessage(vm: vm, destination: destination, endpointHost: endpoint?.address ?? "",
                                         endpointPort: UInt16(clamping: endpoint?.port ?? port ?? 0), performance: performance,
                                         channels: UInt8(clamping: channels))
        try await conn.send(.moveRequest(request))
        while true {
            switch try await conn.receive() {
            case .progress(let bytes, let total):
                await progress?(MigrationProgress(phase: .transferring, bytesSent: bytes, totalBytes: total))
            case .moveResult(let report):
                await progress?(MigrationProgress(phase: .committed, bytesSent: report.bytes, totalBytes: report.bytes))
                return report
            default:
                throw MigrationServiceError.protocolViolation("expected progress or a result", stage: .source)
            }
        }
    }
}
