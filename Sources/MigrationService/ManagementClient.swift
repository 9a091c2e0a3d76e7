import GSS

/// A user on a workstation asking a source host's management service to move a VM.
public struct ManagementClient: Sendable {
    /// The workstation's loopback address (connections originate from it).
    public var localAddress: String

    public init(localAddress: String) throws(MigrationServiceError) {
        try ServiceEndpoint.checkLoopback(localAddress)
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
        let name: GSSName
        do throws(GSSError) {
            if let realm = source.realm {
                name = try GSSName(principal: MigrationServiceNames.hostPrincipal(fqdn: source.fqdn, realm: realm))
            } else {
                name = try GSSName(service: "host", host: source.fqdn)
            }
        } catch {
            throw .connection(.authentication, error.windowsStatus, destination: source.fqdn, detail: error.description, gss: error)
        }
        let request = MoveRequestMessage(vm: vm, destination: destination, endpointHost: endpoint?.address ?? "",
                                         endpointPort: UInt16(clamping: endpoint?.port ?? port ?? 0), performance: performance,
                                         channels: UInt8(clamping: channels))
        return try await MigrationSource.connect(from: localAddress, to: source) { conn throws(MigrationServiceError) in
            _ = try await KerberosHandshake.client(conn, purpose: .management, target: name, credential: credential,
                                                   destinationName: source.fqdn)
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
}
