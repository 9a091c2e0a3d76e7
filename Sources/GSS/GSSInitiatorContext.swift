import CGSSAPI

/// The client side of a security context (`gss_init_sec_context`).
///
/// Non-copyable: exactly one owner steps it and protects messages with it, which is what MIT
/// requires (one thread at a time per context). Move it between tasks with `consume`; the handle
/// is deleted when the value goes away. Stepping may contact the KDC (ticket for the target).
public struct GSSInitiatorContext: ~Copyable, @unchecked Sendable {
    var core: GSSContextCore
    /// The service the context authenticates to.
    public let target: GSSName
    public let credential: GSSCredential?
    /// The flags requested; ``grantedFlags`` says what the mechanism agreed to.
    public let requestedFlags: GSSContextFlags
    public let channelBindings: GSSChannelBindings?
    /// The lifetime requested (nil: the mechanism's default).
    public let requestedLifetime: Duration?

    /// Prepares a context to `target`, with `credential` (nil: the default credential) and
    /// `lifetime` (nil: the mechanism's default; MIT counts whole seconds).
    public init(target: GSSName, credential: GSSCredential? = nil, mechanism: GSSMechanism = .kerberos,
                flags: GSSContextFlags = .standard, lifetime: Duration? = nil,
                channelBindings: GSSChannelBindings? = nil) {
        core = GSSContextCore(mechanism: mechanism)
        self.target = target
        self.credential = credential
        requestedFlags = flags
        requestedLifetime = lifetime
        self.channelBindings = channelBindings
    }

    /// Processes the acceptor's token (nil for the first call) and returns the next token to send.
    public mutating func step(_ input: [UInt8]? = nil) throws(GSSError) -> GSSStep {
        if core.isComplete {
            throw GSSError(.initSecContext, .failure, "The context is already established")
        }
        var minor: OM_uint32 = 0
        var output = gss_buffer_desc()
        var actualMech: gss_OID? = nil
        var retFlags: OM_uint32 = 0
        var timeRec: OM_uint32 = 0
        let credHandle = credential?.handle
        let targetHandle = target.handle
        let flags = requestedFlags.rawValue
        let lifetime = GSSLifetime.contextRequest(requestedLifetime)
        var handle = core.handle
        let major: OM_uint32 = core.mechanism.withOID { mech in
            withOptionalBindings(channelBindings) { cb in
                withOptionalBuffer(input) { inputBuffer in
                    gss_init_sec_context(&minor, credHandle, &handle, targetHandle, mech, flags, lifetime, cb,
                                         inputBuffer, &actualMech, &output, &retFlags, &timeRec)
                }
            }
        }
        core.handle = handle
        defer { gss_release_buffer(&minor, &output) }
        guard major & 0xFFFF_0000 == 0 else {
            var error = GSSError(.initSecContext, major: major, minor: minor)
            if output.length > 0 { error.peerToken = output.bytes }
            throw error
        }
        core.flags = GSSContextFlags(rawValue: retFlags)
        core.lifetime = GSSLifetime.reported(timeRec)
        core.isComplete = major & GSSMajorStatus.continueNeeded == 0
        if core.isComplete && core.mechanism != .spnego, actualMech != nil {
            core.mechanism = GSSMechanism(actualMech)
        }
        return GSSStep(token: output.length > 0 ? output.bytes : nil, isComplete: core.isComplete)
    }
}
