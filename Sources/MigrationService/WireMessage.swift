import MigrationVocabulary
import NIOCore
import WindowsStatus

/// Constants of the migration wire protocol (docs/wire-protocol.md).
public enum WireProtocol {
    /// `MIGA`, the first four bytes of every hello.
    public static let magic: [UInt8] = [0x4D, 0x49, 0x47, 0x41]
    /// The highest protocol version this implementation speaks (2: suite negotiation, AES-256-GCM,
    /// `offer.vmKind` for live QEMU guests).
    public static let version: UInt16 = 2
    /// The lowest it still speaks (1: RFC 4121 wrap only, no suite negotiation, state files only).
    public static let minimumVersion: UInt16 = 1
    /// The version of an outcome query (`purpose` 3, docs/wire-protocol.md, "Version 3: the outcome of a commit"):
    /// version 2's opening plus `outcomeQuery` / `outcome`. Migration and management connections still speak
    /// 1…``version``; a purpose-3 connection speaks exactly this one.
    public static let outcomeVersion: UInt16 = 3
    /// Largest frame payload (after the 4-byte length): 4 MiB + 64 KiB.
    public static let maximumFrameLength = 4 * 1024 * 1024 + 64 * 1024
    /// Largest plaintext chunk a source may send (fits a frame with GSS overhead).
    public static let maximumChunkSize = 4 * 1024 * 1024
    /// The `sha256` of an offer that carries no digest (protocol 2 state files, live guests): 32 zero bytes.
    static let noDigest = [UInt8](repeating: 0, count: 32)
    /// Default plaintext chunk size.
    public static let defaultChunkSize = 1024 * 1024
    /// Most parallel connections of one SMB-like migration.
    public static let maximumChannels = 16
    /// Default port of the migration listener (Hyper-V's is 6600).
    public static let defaultMigrationPort = 6600
}

/// How the frames after authentication are protected (docs/wire-protocol.md, "Protection suites").
public enum ProtectionSuite: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Suite 1: RFC 4121 wrap tokens of the Kerberos context (any GSS implementation speaks it).
    case gssWrap = 1
    /// Suite 2: AES-256-GCM with per-direction keys derived from the context by GSS_Pseudo_random.
    case aes256GCM = 2

    /// Preference order of this implementation.
    public static let preferred: [ProtectionSuite] = [.aes256GCM, .gssWrap]

    public var description: String {
        switch self {
        case .gssWrap: "suite 1 (RFC 4121 wrap)"
        case .aes256GCM: "suite 2 (AES-256-GCM)"
        }
    }
}

/// The client's half of the suite negotiation (`suites`, protocol version 2): its choice, the
/// suites it offers in its order of preference, a fresh nonce, and the migration and channel the
/// connection is for (zeros for a management connection).
struct SuiteOffer: Sendable, Hashable {
    var chosen: UInt8
    var offered: [UInt8]
    var nonce: [UInt8]
    var migrationID: MigrationID
    var channel: UInt8
}

/// Why a connection is opened (field of `hello`).
public enum ConnectionPurpose: UInt8, Sendable, Hashable {
    /// A migration (or one more channel of one) to a destination.
    case migration = 1
    /// A management request (move a VM) to a source.
    case management = 2
    /// A source asks a destination what became of a live move whose commit it never saw confirmed
    /// (protocol version 3 only; on the destination's migration port).
    case outcome = 3
}

/// A destination's answer to `outcomeQuery` (protocol version 3).
enum CommitOutcome: UInt8, Sendable, Hashable {
    /// The destination received `commit` and resumed the guest (it runs there, or ran there).
    case committed = 1
    /// The destination never resumed the guest and never will under that migration id: a move still waiting
    /// for `commit` is ended by the query (its QEMU stopped), a later `commit` refused.
    case notCommitted = 2
}

/// How the client signs on (field of `hello`): Kerberos alone, or CredSSP (TLS + SPNEGO/Kerberos, delivering the
/// user's password) followed by a Kerberos context that seals the connection.
extension MigrationAuthenticationType {
    /// The type's code in `hello`/`helloAck`: 1 Kerberos, 2 CredSSP.
    var wireCode: UInt8 {
        switch self {
        case .kerberos: 1
        case .credSSP: 2
        }
    }

    init?(wireCode: UInt8) {
        switch wireCode {
        case 1: self = .kerberos
        case 2: self = .credSSP
        default: return nil
        }
    }
}

/// The performance option of a migration (`Set-VMHost -VirtualMachineMigrationPerformanceOption`):
/// the simulator's type. `TCPIP` (plain stream), `Compression` (zstd on protocol 2, zlib on 1, before sealing; the default), `SMB`
/// (several authenticated connections in parallel).
public typealias PerformanceOption = MigrationPerformanceOption

extension MigrationPerformanceOption {
    /// The option's code on the wire: 0 TCP/IP, 1 Compression, 2 SMB.
    var wireCode: UInt8 {
        switch self {
        case .tcpIP: 0
        case .compression: 1
        case .smb: 2
        }
    }

    init?(wireCode: UInt8) {
        switch wireCode {
        case 0: self = .tcpIP
        case 1: self = .compression
        case 2: self = .smb
        default: return nil
        }
    }
}

/// A 16-byte migration identifier chosen by the source.
public struct MigrationID: Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) { self.bytes = bytes }

    public static func random() -> MigrationID {
        var g = SystemRandomNumberGenerator()
        return MigrationID(bytes: (0..<16).map { _ in UInt8.random(in: 0...255, using: &g) })
    }

    public var description: String { bytes.map { String($0, radix: 16).leftPadded(2) }.joined() }
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}

/// What a migration moves (`offer.vmKind`, protocol version 2).
public enum VMKind: UInt8, Sendable, Hashable {
    /// A state file copied whole, committed by its SHA-256 (version 1's only kind).
    case stateFile = 0
    /// A running QEMU guest: QEMU's own migration stream, live (`size` is the guest's memory, a hint).
    case qemuLive = 1
}

/// The migration offer: what the source wants to send.
struct MigrationOffer: Sendable, Hashable {
    var id: MigrationID
    var vm: String
    var size: UInt64
    var sha256: [UInt8]
    var performance: PerformanceOption
    var channels: UInt8
    var chunkSize: UInt32
    /// What is moved; on the wire only from version 2 (a byte after `chunkSize`). nil: a version 1
    /// offer, a state file.
    var vmKind: VMKind? = nil
    /// P4: the generation of the source host (the VM's configuration version), e.g. `2012 R2`;
    /// sent last, only when known (an older peer's offer simply ends before it).
    var sourceGeneration: String? = nil

    /// The kind moved (a version 1 offer moves a state file).
    var kind: VMKind { vmKind ?? .stateFile }
}

/// What a move request on the management channel asks for.
struct MoveRequestMessage: Sendable, Hashable {
    var vm: String
    var destination: String
    var endpointHost: String
    var endpointPort: UInt16
    /// nil: the source's configured option.
    var performance: PerformanceOption?
    /// 0: the default.
    var channels: UInt8
}

/// An error as it travels: HRESULT, stage, kind, the user-facing text and a detail string.
struct WireError: Sendable, Hashable {
    var status: UInt32
    var stage: UInt8
    var kind: UInt8
    var windowsText: String
    var message: String
    var detail: String
}

/// One protocol message. Kinds 0x01–0x06 and 0x0F travel in the clear; all others only inside
/// `sealed` (a GSS wrap token with confidentiality and integrity).
enum WireMessage: Sendable, Hashable {
    case hello(minVersion: UInt16, maxVersion: UInt16, purpose: ConnectionPurpose, authentication: MigrationAuthenticationType)
    case helloAck(version: UInt16, authentication: MigrationAuthenticationType)
    /// helloAck of version ≥ 2: also the server's suites (its order of preference) and a fresh 16-byte nonce.
    case helloAckV2(version: UInt16, authentication: MigrationAuthenticationType, suites: [UInt8], nonce: [UInt8])
    /// Client → server right after a version-2 helloAck: the suite chosen and what it rests on.
    case suites(SuiteOffer)
    case token([UInt8])
    /// One CredSSP token (TLS records carrying TSRequests), either way; may be empty (an answer with nothing in it).
    case credSSP([UInt8])
    /// Server → client once authenticated and authorized: the principal the server saw, and its name.
    case authResult(principal: String, server: String)
    case sealed(ByteBuffer)
    case error(WireError)
    case offer(MigrationOffer)
    case join(id: MigrationID, channel: UInt8)
    case queued(position: UInt32)
    case ready
    /// Header of a chunk; the data follows in the same plaintext (see `ChunkHeader`).
    case chunk(ChunkHeader, ByteBuffer)
    case channelDone(chunks: UInt32, bytes: UInt64)
    case commit
    case committed
    case moveRequest(MoveRequestMessage)
    case progress(bytes: UInt64, total: UInt64)
    case moveResult(MigrationReport)
    /// Client → source: end the sign-on session (the source wipes the delivered credentials).
    case signOff
    /// Source → destination (purpose 3): what became of the live move `id` of `vm`?
    case outcomeQuery(id: MigrationID, vm: String)
    /// Destination → source (purpose 3): the answer.
    case outcome(CommitOutcome)

    enum Kind: UInt8 {
        case hello = 0x01, helloAck = 0x02, token = 0x03, authResult = 0x04, sealed = 0x05, credSSP = 0x06, error = 0x0F
        /// `suites` (version 2), and a suite-2 protected frame (decoded by `FrameConnection`, never by `decode`).
        case suites = 0x07, aead = 0x08
        case offer = 0x10, join = 0x11, queued = 0x12, ready = 0x13, chunk = 0x14, channelDone = 0x15
        case commit = 0x16, committed = 0x17
        case moveRequest = 0x20, progress = 0x21, moveResult = 0x22, signOff = 0x23
        /// Version 3, purpose 3.
        case outcomeQuery = 0x18, outcome = 0x19
    }

    var kind: Kind {
        switch self {
        case .hello: .hello
        case .helloAck, .helloAckV2: .helloAck
        case .suites: .suites
        case .token: .token
        case .credSSP: .credSSP
        case .authResult: .authResult
        case .sealed: .sealed
        case .error: .error
        case .offer: .offer
        case .join: .join
        case .queued: .queued
        case .ready: .ready
        case .chunk: .chunk
        case .channelDone: .channelDone
        case .commit: .commit
        case .committed: .committed
        case .moveRequest: .moveRequest
        case .progress: .progress
        case .moveResult: .moveResult
        case .signOff: .signOff
        case .outcomeQuery: .outcomeQuery
        case .outcome: .outcome
        }
    }

    /// Whether the kind may travel outside `sealed`.
    var isClear: Bool {
        switch kind {
        case .hello, .helloAck, .suites, .token, .credSSP, .sealed, .aead, .error: true
        default: false
        }
    }
}

/// Fixed header of a data chunk: `seq u32, offset u64, length u32, flags u8`.
struct ChunkHeader: Sendable, Hashable {
    /// Per-connection sequence number, from 0.
    var sequence: UInt32
    /// Offset of the chunk's plaintext in the VM file.
    var offset: UInt64
    /// Length of the chunk's plaintext (after decompression).
    var length: UInt32
    /// Bit 0: the data is zlib-compressed (protocol 1); bit 1: one zstd frame (protocol 2).
    var flags: UInt8

    static let encodedSize = 17
    static let compressed: UInt8 = 1
    static let zstd: UInt8 = 2
    var isCompressed: Bool { flags & Self.compressed != 0 }
}

/// Malformed input: the reason, for the error frame's detail.
struct WireDecodingError: Error, Sendable, CustomStringConvertible {
    var description: String
    /// Whether the input named an authentication kind this end does not know (SEC_E_SECPKG_NOT_FOUND,
    /// not a malformed message).
    var unknownPackage = false
}

extension ByteBuffer {
    mutating func writeString16(_ s: String) {
        let bytes = Array(s.utf8.prefix(Int(UInt16.max)))
        writeInteger(UInt16(bytes.count))
        writeBytes(bytes)
    }

    mutating func readString16(_ field: String) throws(WireDecodingError) -> String {
        guard let n = readInteger(as: UInt16.self) else { throw WireDecodingError(description: "\(field): missing length") }
        guard let bytes = readBytes(length: Int(n)) else { throw WireDecodingError(description: "\(field): truncated") }
        return String(decoding: bytes, as: UTF8.self)
    }

    mutating func readInt<T: FixedWidthInteger>(_ field: String, as: T.Type = T.self) throws(WireDecodingError) -> T {
        guard let v = readInteger(as: T.self) else { throw WireDecodingError(description: "\(field): truncated") }
        return v
    }

    mutating func readFixed(_ field: String, _ count: Int) throws(WireDecodingError) -> [UInt8] {
        guard let v = readBytes(length: count) else { throw WireDecodingError(description: "\(field): truncated") }
        return v
    }
}

extension WireMessage {
    /// Appends kind and body to `buffer` (no length prefix), as protocol `version` lays it out (the
    /// offer's `vmKind` byte exists from version 2; every other message is the same in both).
    func encode(into b: inout ByteBuffer, version: UInt16 = WireProtocol.minimumVersion) {
        b.writeInteger(kind.rawValue)
        switch self {
        case .hello(let minV, let maxV, let purpose, let auth):
            b.writeBytes(WireProtocol.magic)
            b.writeInteger(minV); b.writeInteger(maxV)
            b.writeInteger(purpose.rawValue); b.writeInteger(auth.wireCode)
        case .helloAck(let v, let auth):
            b.writeBytes(WireProtocol.magic)
            b.writeInteger(v); b.writeInteger(auth.wireCode)
        case .helloAckV2(let v, let auth, let suites, let nonce):
            b.writeBytes(WireProtocol.magic)
            b.writeInteger(v); b.writeInteger(auth.wireCode)
            b.writeInteger(UInt8(clamping: suites.count)); b.writeBytes(suites.prefix(255)); b.writeBytes(nonce)
        case .suites(let o):
            b.writeInteger(o.chosen)
            b.writeInteger(UInt8(clamping: o.offered.count)); b.writeBytes(o.offered.prefix(255))
            b.writeBytes(o.nonce); b.writeBytes(o.migrationID.bytes); b.writeInteger(o.channel)
        case .token(let t), .credSSP(let t):
            b.writeBytes(t)
        case .authResult(let principal, let server):
            b.writeString16(principal); b.writeString16(server)
        case .sealed(let token):
            var t = token
            b.writeBuffer(&t)
        case .error(let e):
            b.writeInteger(e.status); b.writeInteger(e.stage); b.writeInteger(e.kind)
            b.writeString16(e.windowsText); b.writeString16(e.message); b.writeString16(e.detail)
        case .offer(let o):
            b.writeBytes(o.id.bytes); b.writeString16(o.vm); b.writeInteger(o.size); b.writeBytes(o.sha256)
            b.writeInteger(o.performance.wireCode); b.writeInteger(o.channels); b.writeInteger(o.chunkSize)
            if version >= 2 { b.writeInteger(o.kind.rawValue) }
            if let g = o.sourceGeneration { b.writeString16(g) }
        case .join(let id, let channel):
            b.writeBytes(id.bytes); b.writeInteger(channel)
        case .queued(let position):
            b.writeInteger(position)
        case .ready, .commit, .committed, .signOff:
            break
        case .chunk(let h, let data):
            h.encode(into: &b)
            var d = data
            b.writeBuffer(&d)
        case .channelDone(let chunks, let bytes):
            b.writeInteger(chunks); b.writeInteger(bytes)
        case .moveRequest(let m):
            b.writeString16(m.vm); b.writeString16(m.destination); b.writeString16(m.endpointHost)
            b.writeInteger(m.endpointPort); b.writeInteger(m.performance?.wireCode ?? 0xFF); b.writeInteger(m.channels)
        case .progress(let bytes, let total):
            b.writeInteger(bytes); b.writeInteger(total)
        case .moveResult(let r):
            b.writeString16(r.vm); b.writeInteger(r.bytes); b.writeString16(r.sha256); b.writeString16(r.destinationPrincipal)
            b.writeInteger(r.performance.wireCode); b.writeInteger(UInt8(clamping: r.channels))
            b.writeInteger(UInt32(clamping: r.queuedAt ?? 0))
        case .outcomeQuery(let id, let vm):
            b.writeBytes(id.bytes); b.writeString16(vm)
        case .outcome(let o):
            b.writeInteger(o.rawValue)
        }
    }

    /// Decodes one message (kind byte first) from the whole of `buffer`, as protocol `version` lays it out.
    static func decode(_ buffer: ByteBuffer, version: UInt16 = WireProtocol.minimumVersion) throws(WireDecodingError) -> WireMessage {
        var b = buffer
        let raw: UInt8 = try b.readInt("kind")
        guard let kind = Kind(rawValue: raw) else {
            throw WireDecodingError(description: "unknown message kind 0x\(String(raw, radix: 16))")
        }
        let message: WireMessage
        switch kind {
        case .hello, .helloAck:
            message = try decodeHello(kind, &b)
        case .suites:
            let chosen: UInt8 = try b.readInt("chosen")
            let n: UInt8 = try b.readInt("suite count")
            let offered = try b.readFixed("suites", Int(n))
            let nonce = try b.readFixed("nonce", 16)
            let id = MigrationID(bytes: try b.readFixed("migrationID", 16))
            message = .suites(SuiteOffer(chosen: chosen, offered: offered, nonce: nonce, migrationID: id,
                                         channel: try b.readInt("channel")))
        case .aead:
            throw WireDecodingError(description: "a suite-2 frame inside a frame")
        case .token:
            guard b.readableBytes > 0 else { throw WireDecodingError(description: "empty token") }
            message = .token(b.readBytes(length: b.readableBytes) ?? [])
        case .credSSP:
            message = .credSSP(b.readBytes(length: b.readableBytes) ?? [])
        case .authResult:
            message = .authResult(principal: try b.readString16("principal"), server: try b.readString16("server"))
        case .sealed:
            guard b.readableBytes > 0 else { throw WireDecodingError(description: "empty sealed token") }
            message = .sealed(b.readSlice(length: b.readableBytes) ?? ByteBuffer())
        case .error:
            message = .error(WireError(status: try b.readInt("status"), stage: try b.readInt("stage"),
                                       kind: try b.readInt("kind"), windowsText: try b.readString16("text"),
                                       message: try b.readString16("message"), detail: try b.readString16("detail")))
        case .offer:
            message = .offer(try decodeOffer(&b, version: version))
        case .join:
            message = .join(id: MigrationID(bytes: try b.readFixed("id", 16)), channel: try b.readInt("channel"))
        case .queued:
            message = .queued(position: try b.readInt("position"))
        case .ready: message = .ready
        case .commit: message = .commit
        case .committed: message = .committed
        case .signOff: message = .signOff
        case .chunk:
            let h = try ChunkHeader.decode(&b)
            message = .chunk(h, b.readSlice(length: b.readableBytes) ?? ByteBuffer())
        case .channelDone:
            message = .channelDone(chunks: try b.readInt("chunks"), bytes: try b.readInt("bytes"))
        case .moveRequest:
            message = .moveRequest(try decodeMoveRequest(&b))
        case .progress:
            message = .progress(bytes: try b.readInt("bytes"), total: try b.readInt("total"))
        case .moveResult:
            message = .moveResult(try decodeMoveResult(&b))
        case .outcomeQuery:
            message = .outcomeQuery(id: MigrationID(bytes: try b.readFixed("id", 16)), vm: try b.readString16("vm"))
        case .outcome:
            let raw: UInt8 = try b.readInt("outcome")
            guard let outcome = CommitOutcome(rawValue: raw) else { throw WireDecodingError(description: "unknown outcome \(raw)") }
            message = .outcome(outcome)
        }
        guard b.readableBytes == 0 || kind == .chunk || kind == .sealed || kind == .token else {
            throw WireDecodingError(description: "\(b.readableBytes) trailing bytes after \(kind)")
        }
        return message
    }

    /// `hello` or `helloAck` after the kind byte: magic, then the versions (and on v2 the suites and nonce).
    private static func decodeHello(_ kind: Kind, _ b: inout ByteBuffer) throws(WireDecodingError) -> WireMessage {
        guard try b.readFixed("magic", 4) == WireProtocol.magic else {
            throw WireDecodingError(description: "bad magic (not a migration protocol peer)")
        }
        if kind == .hello {
            let minV: UInt16 = try b.readInt("minVersion")
            let maxV: UInt16 = try b.readInt("maxVersion")
            guard let purpose = ConnectionPurpose(rawValue: try b.readInt("purpose")) else {
                throw WireDecodingError(description: "unknown purpose")
            }
            let rawAuth: UInt8 = try b.readInt("authentication")
            guard let auth = MigrationAuthenticationType(wireCode: rawAuth) else {
                throw WireDecodingError(description: "unknown authentication kind 0x\(String(rawAuth, radix: 16))", unknownPackage: true)
            }
            return .hello(minVersion: minV, maxVersion: maxV, purpose: purpose, authentication: auth)
        } else {
            let v: UInt16 = try b.readInt("version")
            guard let auth = MigrationAuthenticationType(wireCode: try b.readInt("authentication")) else {
                throw WireDecodingError(description: "unknown authentication kind")
            }
            if v >= 2 {
                let n: UInt8 = try b.readInt("suite count")
                let suites = try b.readFixed("suites", Int(n))
                return .helloAckV2(version: v, authentication: auth, suites: suites, nonce: try b.readFixed("nonce", 16))
            } else {
                return .helloAck(version: v, authentication: auth)
            }
        }
    }

    /// An `offer` after the kind byte (v2 adds the VM kind; the source generation is optional, last).
    private static func decodeOffer(_ b: inout ByteBuffer, version: UInt16) throws(WireDecodingError) -> MigrationOffer {
        let id = MigrationID(bytes: try b.readFixed("id", 16))
        let vm = try b.readString16("vm")
        let size: UInt64 = try b.readInt("size")
        let hash = try b.readFixed("sha256", 32)
        guard let perf = PerformanceOption(wireCode: try b.readInt("performance")) else {
            throw WireDecodingError(description: "unknown performance option")
        }
        var offer = MigrationOffer(id: id, vm: vm, size: size, sha256: hash, performance: perf,
                                   channels: try b.readInt("channels"), chunkSize: try b.readInt("chunkSize"))
        if version >= 2 {
            let raw: UInt8 = try b.readInt("vmKind")
            guard let kind = VMKind(rawValue: raw) else {
                throw WireDecodingError(description: "unknown VM kind \(raw)")
            }
            offer.vmKind = kind
        }
        if b.readableBytes > 0 { offer.sourceGeneration = try b.readString16("sourceGeneration") }
        return offer
    }

    private static func decodeMoveRequest(_ b: inout ByteBuffer) throws(WireDecodingError) -> MoveRequestMessage {
        let vm = try b.readString16("vm")
        let dest = try b.readString16("destination")
        let host = try b.readString16("endpointHost")
        let port: UInt16 = try b.readInt("endpointPort")
        let perfRaw: UInt8 = try b.readInt("performance")
        let channels: UInt8 = try b.readInt("channels")
        return MoveRequestMessage(vm: vm, destination: dest, endpointHost: host, endpointPort: port,
                                  performance: PerformanceOption(wireCode: perfRaw), channels: channels)
    }

    private static func decodeMoveResult(_ b: inout ByteBuffer) throws(WireDecodingError) -> MigrationReport {
        let vm = try b.readString16("vm")
        let bytes: UInt64 = try b.readInt("bytes")
        let hash = try b.readString16("sha256")
        let principal = try b.readString16("principal")
        guard let perf = PerformanceOption(wireCode: try b.readInt("performance")) else {
            throw WireDecodingError(description: "unknown performance option")
        }
        let channels: UInt8 = try b.readInt("channels")
        let queued: UInt32 = try b.readInt("queuedAt")
        return MigrationReport(vm: vm, bytes: bytes, sha256: hash, destinationPrincipal: principal,
                               performance: perf, channels: Int(channels), queuedAt: queued == 0 ? nil : Int(queued))
    }
}

extension ChunkHeader {
    func encode(into b: inout ByteBuffer) {
        b.writeInteger(sequence); b.writeInteger(offset); b.writeInteger(length); b.writeInteger(flags)
    }

    static func decode(_ b: inout ByteBuffer) throws(WireDecodingError) -> ChunkHeader {
        ChunkHeader(sequence: try b.readInt("sequence"), offset: try b.readInt("offset"),
                    length: try b.readInt("length"), flags: try b.readInt("flags"))
    }
}
