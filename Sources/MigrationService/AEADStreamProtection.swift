import Crypto
import GSS
import KerberosCrypto
import NIOCore
import WindowsStatus

/// Which migration and channel a connection is for: bound into the suite negotiation (version 2)
/// and hence into the keys. Zeros for management connections.
struct ConnectionBinding: Sendable, Hashable {
    var migrationID: MigrationID
    var channel: UInt8

    static let none = ConnectionBinding(migrationID: MigrationID(bytes: [UInt8](repeating: 0, count: 16)), channel: 0)
}

/// What a connection speaks: the protocol versions and protection suites it offers (preference order).
struct ProtocolSettings: Sendable, Hashable {
    var versions: ClosedRange<UInt16> = WireProtocol.minimumVersion...WireProtocol.version
    var suites: [ProtectionSuite] = ProtectionSuite.preferred
    /// Suite 2's frames per key (tests lower it to exercise rekeying; both ends must agree).
    var rekeyInterval: UInt64 = AEADStreamProtection.defaultRekeyInterval

    /// The suite a client picks: the first of its own list that the server offers.
    static func choose(client: [UInt8], server: [UInt8]) -> UInt8? {
        client.first { c in ProtectionSuite(rawValue: c) != nil && server.contains(c) }
    }
}

/// What the opening agreed: version, suite, binding, and the transcript hash of the clear opening
/// (`hello`, `helloAck`, `suites`) that the GSS channel bindings and the suite-2 keys depend on.
struct SuiteNegotiation: Sendable, Hashable {
    var version: UInt16
    var suite: ProtectionSuite
    var binding: ConnectionBinding
    /// SHA-256 over each opening message as `u32 length ‖ payload`; empty for version 1.
    var transcript: [UInt8]

    static let version1 = SuiteNegotiation(version: 1, suite: .gssWrap, binding: .none, transcript: [])

    /// `"MIGA v2 transcript" ‖ T` as the GSS channel bindings' application data (version ≥ 2).
    var channelBindings: GSSChannelBindings? {
        version >= 2 ? GSSChannelBindings(applicationData: Array("MIGA v2 transcript".utf8) + transcript) : nil
    }

    static func transcript(of messages: [WireMessage]) -> [UInt8] {
        var hash = SHA256()
        for m in messages {
            var b = ByteBufferAllocator().buffer(capacity: 64)
            m.encode(into: &b)
            let n = UInt32(b.readableBytes)
            hash.update(data: [UInt8(n >> 24), UInt8((n >> 16) & 0xFF), UInt8((n >> 8) & 0xFF), UInt8(n & 0xFF)])
            b.withUnsafeReadableBytes { hash.update(bufferPointer: $0) }
        }
        return Array(hash.finalize())
    }
}

/// Derives keys from an established security context (`GSS_Pseudo_random`, KEY_FULL).
protocol KeyDerivingContext: AnyObject {
    func pseudoRandom(_ input: [UInt8], length: Int) throws(GSSError) -> [UInt8]
}

/// A suite-2 failure: what the receiver saw, with the Windows status suite 1 reports for the same
/// condition (altered → SEC_E_MESSAGE_ALTERED, replayed/reordered/missing → SEC_E_OUT_OF_SEQUENCE,
/// malformed → SEC_E_INVALID_TOKEN).
enum AEADStreamError: Error, Sendable, CustomStringConvertible {
    case crypto(KerberosCryptoError)
    case keyDerivation(GSSError)

    var windowsStatus: WindowsStatus {
        switch self {
        case .crypto(let e): e.windowsStatus
        case .keyDerivation(let e): e.windowsStatus
        }
    }

    var gssError: GSSError? {
        if case .keyDerivation(let e) = self { return e }
        return nil
    }

    var description: String {
        switch self {
        case .crypto(let e): "suite 2: \(e)"
        case .keyDerivation(let e): "suite 2 key derivation: \(e)"
        }
    }
}

/// Suite 2 of one connection: AES-256-GCM frames, one key per direction and epoch, derived from the
/// connection's Kerberos context with GSS_Pseudo_random (docs/wire-protocol.md, "Suite 2").
///
/// A frame's payload is `u8 0x08 ‖ u64 sequence ‖ ciphertext ‖ tag[16]`; the associated data is the
/// frame's first 13 bytes as sent (`u32 length ‖ 0x08 ‖ u64 sequence`); the nonce is
/// `u32 direction ‖ u64 sequence`. Sequences start at 0 per direction and go up by one; frame `n`
/// uses the key of epoch `n / rekeyInterval`. Seal and open work in place on the caller's buffer:
/// a QEMU byte stream or a chunk stream uses the same two calls.
///
/// Not `Sendable`: one connection's task owns it.
final class AEADStreamProtection {
    /// Frames per key (2^16): with frames ≤ 4 MiB + 64 KiB, a key protects < 2^38.1 bytes, the
    /// margin TLS 1.3 keeps for AES-GCM; 2^16 frames is also far below GCM's 2^32-invocation bound.
    static let defaultRekeyInterval: UInt64 = 1 << 16
    /// `u32 length ‖ u8 kind ‖ u64 sequence`.
    static let headerLength = 13
    static let tagLength = AES256GCM.tagLength
    /// Bytes a sealed frame adds to its plaintext (after the 4-byte length): kind, sequence, tag.
    static let overhead = 1 + 8 + tagLength
    static let keyLabel = Array("MIGA suite 2 key".utf8)

    enum Direction: UInt8 {
        case clientToServer = 1
        case serverToClient = 2
    }

    private let context: any KeyDerivingContext
    private let negotiation: SuiteNegotiation
    private let sendDirection: Direction
    private let receiveDirection: Direction
    let rekeyInterval: UInt64
    private var sendSequence: UInt64 = 0
    private var receiveSequence: UInt64 = 0
    private var sealer: AES256GCM
    private var opener: AES256GCM
    private var sendEpoch: UInt32 = 0
    private var receiveEpoch: UInt32 = 0

    init(context: any KeyDerivingContext, negotiation: SuiteNegotiation, isClient: Bool,
         rekeyInterval: UInt64 = AEADStreamProtection.defaultRekeyInterval) throws(AEADStreamError) {
        self.context = context
        self.negotiation = negotiation
        self.rekeyInterval = max(rekeyInterval, 1)
        sendDirection = isClient ? .clientToServer : .serverToClient
        receiveDirection = isClient ? .serverToClient : .clientToServer
        sealer = try Self.cipher(context, negotiation, sendDirection, epoch: 0, .seal)
        opener = try Self.cipher(context, negotiation, receiveDirection, epoch: 0, .open)
    }

    /// The PRF input of one key: `"MIGA suite 2 key" ‖ u16 version ‖ u8 direction ‖ bytes[16] migrationID ‖
    /// u8 channel ‖ u32 epoch ‖ bytes[32] transcript`.
    static func keyInput(_ n: SuiteNegotiation, _ direction: Direction, epoch: UInt32) -> [UInt8] {
        var input = keyLabel
        input += [UInt8(n.version >> 8), UInt8(n.version & 0xFF), direction.rawValue]
        input += n.binding.migrationID.bytes
        input.append(n.binding.channel)
        input += [UInt8(epoch >> 24), UInt8((epoch >> 16) & 0xFF), UInt8((epoch >> 8) & 0xFF), UInt8(epoch & 0xFF)]
        input += n.transcript
        return input
    }

    private static func cipher(_ context: any KeyDerivingContext, _ n: SuiteNegotiation, _ direction: Direction,
                               epoch: UInt32, _ use: AES256GCM.Direction) throws(AEADStreamError) -> AES256GCM {
        var key: [UInt8]
        do {
            key = try context.pseudoRandom(keyInput(n, direction, epoch: epoch), length: AES256GCM.keyLength)
        } catch {
            throw .keyDerivation(error)
        }
        defer { for i in key.indices { key[i] = 0 } }
        do { return try AES256GCM(key: key, direction: use) } catch { throw .crypto(error) }
    }

    private static func withNonce<R>(_ direction: Direction, _ sequence: UInt64,
                                     _ body: (UnsafeRawBufferPointer) throws(AEADStreamError) -> R) throws(AEADStreamError) -> R {
        var bytes: (UInt32, UInt64) = (0, 0)
        return try withUnsafeMutableBytes(of: &bytes) { raw throws(AEADStreamError) -> R in
            let p = UnsafeMutableRawBufferPointer(rebasing: raw[0..<12])
            p.storeBytes(of: UInt32(direction.rawValue).bigEndian, toByteOffset: 0, as: UInt32.self)
            p.storeBytes(of: sequence.bigEndian, toByteOffset: 4, as: UInt64.self)
            return try body(UnsafeRawBufferPointer(p))
        }
    }

    private func epoch(of sequence: UInt64) throws(AEADStreamError) -> UInt32 {
        let e = sequence / rekeyInterval
        guard e <= UInt64(UInt32.max) else { throw .crypto(.invalidKey("suite 2: the connection used up its keys")) }
        return UInt32(e)
    }

    /// Seals one frame: encrypts `plaintext` (inner kind + body) in place, writes the frame's first
    /// 13 bytes into `header` and the tag into `tag`. On the wire: header ‖ plaintext ‖ tag.
    func seal(_ plaintext: UnsafeMutableRawBufferPointer, header: UnsafeMutableRawBufferPointer,
              tag: UnsafeMutableRawBufferPointer) throws(AEADStreamError) {
        guard header.count == Self.headerLength else { throw .crypto(.bufferTooSmall(needed: Self.headerLength)) }
        let sequence = sendSequence
        guard sequence < UInt64.max else { throw .crypto(.invalidKey("suite 2: sequence numbers used up")) }
        let e = try epoch(of: sequence)
        if e != sendEpoch {
            sealer = try Self.cipher(context, negotiation, sendDirection, epoch: e, .seal)
            sendEpoch = e
        }
        let length = UInt32(Self.overhead + plaintext.count)
        header.storeBytes(of: length.bigEndian, toByteOffset: 0, as: UInt32.self)
        header.storeBytes(of: WireMessage.Kind.aead.rawValue, toByteOffset: 4, as: UInt8.self)
        header.storeBytes(of: sequence.bigEndian, toByteOffset: 5, as: UInt64.self)
        let sealer = self.sealer
        try Self.withNonce(sendDirection, sequence) { nonce throws(AEADStreamError) in
            do throws(KerberosCryptoError) { try sealer.seal(plaintext, nonce: nonce, aad: UnsafeRawBufferPointer(header), tag: tag) } catch {
                throw .crypto(error)
            }
        }
        sendSequence = sequence + 1
    }

    /// Opens one frame's payload (everything after the 4-byte length: kind, sequence, ciphertext,
    /// tag) in place; returns where the plaintext is inside it. A replayed, reordered or missing frame
    /// is refused before decryption, an altered one by the tag.
    func open(_ payload: UnsafeMutableRawBufferPointer) throws(AEADStreamError) -> Range<Int> {
        guard payload.count >= Self.overhead, payload.load(as: UInt8.self) == WireMessage.Kind.aead.rawValue else {
            throw .crypto(.defectiveToken("suite 2 frame of \(payload.count) bytes (at least \(Self.overhead))"))
        }
        let sequence = UInt64(bigEndian: payload.loadUnaligned(fromByteOffset: 1, as: UInt64.self))
        let expected = receiveSequence
        if sequence < expected { throw .crypto(.duplicateToken(sequenceNumber: sequence)) }
        if sequence > expected { throw .crypto(.gapToken(sequenceNumber: sequence)) }
        let e = try epoch(of: sequence)
        if e != receiveEpoch {
            opener = try Self.cipher(context, negotiation, receiveDirection, epoch: e, .open)
            receiveEpoch = e
        }
        let body = 9..<(payload.count - Self.tagLength)
        let opener = self.opener
        // The associated data: the frame's first 13 bytes as sent (length ‖ kind ‖ sequence).
        var aadBytes = [UInt8](repeating: 0, count: Self.headerLength)
        let n = UInt32(payload.count)
        aadBytes[0] = UInt8(n >> 24); aadBytes[1] = UInt8((n >> 16) & 0xFF); aadBytes[2] = UInt8((n >> 8) & 0xFF); aadBytes[3] = UInt8(n & 0xFF)
        for i in 0..<9 { aadBytes[4 + i] = payload[i] }
        try Self.withNonce(receiveDirection, sequence) { nonce throws(AEADStreamError) in
            let result = aadBytes.withUnsafeBytes { aad in
                Result { () throws(KerberosCryptoError) in
                    try opener.open(UnsafeMutableRawBufferPointer(rebasing: payload[body]), nonce: nonce, aad: aad,
                                    tag: UnsafeRawBufferPointer(rebasing: payload[body.upperBound...]))
                }
            }
            if case .failure(let e) = result { throw .crypto(e) }
        }
        receiveSequence = sequence + 1
        return body
    }
}
