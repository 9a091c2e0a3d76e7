// libFuzzer target (docs/fuzzing.md): RFC 4121 per-message tokens from a peer — Wrap tokens (copying and
// in-place unwrap, any RRC) and MIC tokens — checked by an acceptor of each enctype, with and without an
// acceptor subkey; and the other way round, a message wrapped by an initiator must unwrap to itself.
// Built only with MIGAUTH_FUZZ=1 and `-sanitize=fuzzer` (.ci/fuzz-smoke).
import KerberosCrypto

/// Fixed key material: the fuzzer explores token parsing, rotation and the checksum paths, not the keys.
/// Made once (key derivation costs more than a token); without replay or sequence detection, so that one
/// input's verdict does not depend on the inputs before it.
func makeContexts(_ enctype: Enctype, subkey: Bool) -> (initiator: ProtectionContext, acceptor: ProtectionContext)? {
    do {
        let key = try KerberosKey(enctype: enctype, bytes: (0..<enctype.keyLength).map { UInt8($0) })
        let acceptorKey = subkey
            ? try KerberosKey(enctype: enctype, bytes: (0..<enctype.keyLength).map { UInt8(0xA0 &+ $0) }) : nil
        let initiator = try ProtectionContext(role: .initiator, contextKey: key, acceptorSubkey: acceptorKey,
                                              sendSequenceNumber: 7, receiveSequenceNumber: 9,
                                              replayDetection: false, sequenceDetection: false)
        let acceptor = try ProtectionContext(role: .acceptor, contextKey: key, acceptorSubkey: acceptorKey,
                                             sendSequenceNumber: 9, receiveSequenceNumber: 7,
                                             replayDetection: false, sequenceDetection: false)
        return (initiator, acceptor)
    } catch {
        return nil
    }
}

let contexts: [[(initiator: ProtectionContext, acceptor: ProtectionContext)?]] = Enctype.allCases.map { enctype in
    [false, true].map { makeContexts(enctype, subkey: $0) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRFC4121(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let start, count > 0 else { return 0 }
    // First byte: enctype (bits 0–1), acceptor subkey (bit 2), mode (bits 3–4), confidentiality (bit 5).
    let control = start[0]
    let index = Int(control & 3) % Enctype.allCases.count
    let enctype = Enctype.allCases[index]
    guard let (initiator, acceptor) = contexts[index][control & 4 != 0 ? 1 : 0] else { return 0 }
    let body = Array(UnsafeBufferPointer(start: start + 1, count: count - 1))
    switch (control >> 3) & 3 {
    case 0:
        _ = try? acceptor.unwrap(body)
    case 1:
        var copy = body
        _ = copy.withUnsafeMutableBytes { try? acceptor.unwrap(inPlace: $0) }
    case 2:
        _ = try? acceptor.verifyMIC(Array("migration".utf8), token: body)
    default:
        // The body as a message: wrapped and signed by the initiator, it must come back unchanged.
        let confidential = control & 0x20 != 0
        do {
            let token = try initiator.wrap(body, confidential: confidential)
            precondition(token.count == initiator.wrappedLength(messageLength: body.count, confidential: confidential),
                         "wrappedLength disagrees with wrap")
            let unwrapped = try acceptor.unwrap(token)
            precondition(unwrapped.data == body, "a wrapped message did not unwrap to itself")
            let mic = try initiator.getMIC(body)
            try acceptor.verifyMIC(body, token: mic)
        } catch {
            preconditionFailure("\(enctype): own tokens refused: \(error)")
        }
    }
    return 0
}
