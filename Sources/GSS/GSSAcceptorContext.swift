import CGSSAPI

/// The server side of a security context (`gss_accept_sec_context`).
///
/// Non-copyable, like ``GSSInitiatorContext``: one owner at a time; the handle is deleted when
/// the value goes away. Tokens larger than ``maximumTokenSize`` are refused before MIT sees them.
public struct GSSAcceptorContext: ~Copyable, @unchecked Sendable {
    var core: GSSContextCore
    public let credential: GSSCredential?
    public let channelBindings: GSSChannelBindings?
    /// Largest initiator token accepted (Windows' MaxTokenSize is 48,000–65,535 bytes).
    public let maximumTokenSize: Int
    /// The authenticated initiator, once complete.
    public private(set) var peerName: GSSName? = nil
    /// The initiator's credential delegated to this acceptor (a forwarded TGT, or MIT's
    /// S4U2Proxy-capable proxy credential when the acceptor credential can get its own tickets).
    public private(set) var delegatedCredential: GSSCredential? = nil

    /// Prepares to accept with `credential` (nil: the default keytab, any principal in it).
    public init(credential: GSSCredential? = nil, channelBindings: GSSChannelBindings? = nil,
                maximumTokenSize: Int = 256 * 1024) {
        core = GSSContextCore(mechanism: .kerberos)
        self.credential = credential
        self.channelBindings = channelBindings
        self.maximumTokenSize = maximumTokenSize
    }

    /// Processes an initiator token and returns the reply token, if any.
    public mutating func step(_ input: [UInt8]) throws(GSSError) -> GSSStep {
        if core.isComplete {
            throw GSSError(.acceptSecContext, .failure, "The context is already established")
        }
        guard !input.isEmpty, input.count <= maximumTokenSize else {
            throw GSSError(.acceptSecContext, .defectiveToken,
                           "Token of \(input.count) bytes (allowed 1…\(maximumTokenSize))")
        }
        var minor: OM_uint32 = 0
        var output = gss_buffer_desc()
        var mech: gss_OID? = nil
        var retFlags: OM_uint32 = 0
        var timeRec: OM_uint32 = 0
        var source: gss_name_t? = nil
        var delegated: gss_cred_id_t? = nil
        let credHandle = credential?.handle
        var handle = core.handle
        let major: OM_uint32 = withOptionalBindings(channelBindings) { cb in
            withOptionalBuffer(input) { inputBuffer in
                gss_accept_sec_context(&minor, &handle, credHandle, inputBuffer, cb, &source, &mech, &output,
                                       &retFlags, &timeRec, &delegated)
            }
        }
        core.handle = handle
        let sourceName = source.map(GSSName.init(owning:))
        let delegatedCred = delegated.map(GSSCredential.init(owning:))
        defer { gss_release_buffer(&minor, &output) }
        guard major & 0xFFFF_0000 == 0 else {
            var error = GSSError(.acceptSecContext, major: major, minor: minor).mappingNTLMLogonFailure(input: input)
            if output.length > 0 { error.peerToken = output.bytes }
            throw error
        }
        core.flags = GSSContextFlags(rawValue: retFlags)
        core.lifetime = GSSLifetime.reported(timeRec)
        core.isComplete = major & GSSMajorStatus.continueNeeded == 0
        if mech != nil { core.mechanism = GSSMechanism(mech) }
        if let sourceName { peerName = sourceName }
        if let delegatedCred { delegatedCredential = delegatedCred }
        return GSSStep(token: output.length > 0 ? output.bytes : nil, isComplete: core.isComplete)
    }
}
