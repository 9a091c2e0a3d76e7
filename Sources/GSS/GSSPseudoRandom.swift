import CGSSAPI
#if canImport(Glibc)
import Glibc
#endif

/// Which key of an established context `GSS_Pseudo_random` (RFC 4401) uses.
public enum GSSPRFKey: Sendable, Hashable {
    /// `GSS_C_PRF_KEY_FULL`: the key both peers contributed to (Kerberos: the acceptor subkey when
    /// the acceptor asserted one, otherwise the initiator's subkey or session key; RFC 4402).
    case full
    /// `GSS_C_PRF_KEY_PARTIAL`: the initiator's subkey or the session key.
    case partial

    var rawValue: Int32 {
        switch self {
        case .full: Int32(GSS_C_PRF_KEY_FULL)
        case .partial: Int32(GSS_C_PRF_KEY_PARTIAL)
        }
    }
}

extension GSSSecurityContext where Self: ~Copyable {
    /// Largest output one call may ask for. RFC 4401 lets mechanisms cap it; 64 KiB is far more
    /// than a key derivation needs and keeps a hostile length from asking MIT for gigabytes.
    public static var maximumPseudoRandomLength: Int { 65_536 }

    /// ``pseudoRandom(prfKey:input:outputLength:)`` with the full key (`GSS_C_PRF_KEY_FULL`).
    public func pseudoRandom(input: [UInt8], outputLength: Int) throws(GSSError) -> [UInt8] {
        try pseudoRandom(prfKey: .full, input: input, outputLength: outputLength)
    }
}

extension GSSInitiatorContext {
    /// `GSS_Pseudo_random` (RFC 4401; for Kerberos RFC 4402's PRF+ with the enctype's PRF):
    /// `outputLength` bytes derived from the context's key chosen by `prfKey` and `input`. Both
    /// ends of one context get the same bytes for the same input; nothing else can compute them.
    /// Pure computation (no KDC), so it does not block; it does not touch sequence state.
    public func pseudoRandom(prfKey: GSSPRFKey = .full, input: [UInt8], outputLength: Int) throws(GSSError) -> [UInt8] {
        try core.pseudoRandom(prfKey: prfKey, input: input, outputLength: outputLength)
    }
}

extension GSSAcceptorContext {
    /// `GSS_Pseudo_random` (RFC 4401): see ``GSSInitiatorContext/pseudoRandom(prfKey:input:outputLength:)``.
    public func pseudoRandom(prfKey: GSSPRFKey = .full, input: [UInt8], outputLength: Int) throws(GSSError) -> [UInt8] {
        try core.pseudoRandom(prfKey: prfKey, input: input, outputLength: outputLength)
    }
}

extension GSSContextCore {
    func pseudoRandom(prfKey: GSSPRFKey, input: [UInt8], outputLength: Int) throws(GSSError) -> [UInt8] {
        guard isComplete, let handle else {
            throw GSSError(.pseudoRandom, .noContext, "The security context is not established yet")
        }
        guard outputLength > 0, outputLength <= GSSInitiatorContext.maximumPseudoRandomLength else {
            throw GSSError(.pseudoRandom, .failure,
                           "Pseudo-random output of \(outputLength) bytes asked; 1…\(GSSInitiatorContext.maximumPseudoRandomLength) allowed")
        }
        var minor: OM_uint32 = 0
        var output = gss_buffer_desc()
        let major = input.withUnsafeBytes { raw in
            var prfIn = gss_buffer_desc(length: raw.count, value: UnsafeMutableRawPointer(mutating: raw.baseAddress))
            return gss_pseudo_random(&minor, handle, prfKey.rawValue, &prfIn, outputLength, &output)
        }
        defer {
            // Key material: wiped before MIT frees it.
            if let value = output.value { memset(value, 0, output.length) }
            gss_release_buffer(&minor, &output)
        }
        guard major == 0 else { throw error(.pseudoRandom, major, minor) }
        guard output.length == outputLength else {
            throw GSSError(.pseudoRandom, .failure,
                           "The mechanism returned \(output.length) pseudo-random bytes, \(outputLength) asked")
        }
        return output.bytes
    }
}
