/// RDP's security negotiation in front of CredSSP ([MS-RDPBCGR] 2.2.1.1 and 2.2.1.2): the client's X.224
/// Connection Request with an `RDP_NEG_REQ`, the server's Connection Confirm with an `RDP_NEG_RSP` (or
/// `RDP_NEG_FAILURE`), each in a TPKT (RFC 1006). After a confirm that selects ``RDPProtocols/hybrid``, TLS and
/// then CredSSP run directly on the TCP stream.
///
/// Only what a CredSSP endpoint needs: no MCS, no RDP security. ``CredSSPServer/runRDP(inbound:outbound:)`` and
/// ``CredSSPClient/runRDP(inbound:outbound:request:)`` drive it.
public struct RDPProtocols: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// PROTOCOL_SSL: TLS alone.
    public static let ssl = RDPProtocols(rawValue: 0x1)
    /// PROTOCOL_HYBRID: TLS then CredSSP (NLA).
    public static let hybrid = RDPProtocols(rawValue: 0x2)
    /// PROTOCOL_RDSTLS.
    public static let rdstls = RDPProtocols(rawValue: 0x4)
    /// PROTOCOL_HYBRID_EX: CredSSP followed by an Early User Authorization Result PDU.
    public static let hybridEx = RDPProtocols(rawValue: 0x8)
}

/// The client's X.224 Connection Request.
public struct RDPConnectionRequest: Sendable, Hashable {
    /// The routing cookie's user name (`Cookie: mstshash=<name>`), if the client sent one.
    public var cookie: String?
    /// The protocols the client offers (`RDP_NEG_REQ.requestedProtocols`); nil when it sent no `RDP_NEG_REQ`
    /// (a legacy client that speaks only standard RDP security).
    public var requestedProtocols: RDPProtocols?
    /// `RDP_NEG_REQ.flags` (restricted admin, redirected authentication, correlation info).
    public var flags: UInt8

    public init(cookie: String? = nil, requestedProtocols: RDPProtocols? = [.ssl, .hybrid], flags: UInt8 = 0) {
        self.cookie = cookie
        self.requestedProtocols = requestedProtocols
        self.flags = flags
    }
}

extension RDPConnectionRequest {
    /// Decodes a whole TPKT holding an X.224 Connection Request.
    public init(x224 bytes: [UInt8]) throws(CredSSPError) { self = try X224.decodeRequest(bytes) }
    /// The TPKT + X.224 Connection Request bytes.
    public var x224Bytes: [UInt8] { X224.encode(self) }
}

extension RDPConnectionConfirm {
    /// Decodes a whole TPKT holding an X.224 Connection Confirm.
    public init(x224 bytes: [UInt8]) throws(CredSSPError) { self = try X224.decodeConfirm(bytes) }
    /// The TPKT + X.224 Connection Confirm bytes.
    public var x224Bytes: [UInt8] { X224.encode(self) }
}

/// The server's X.224 Connection Confirm.
public enum RDPConnectionConfirm: Sendable, Hashable {
    /// `RDP_NEG_RSP`: the protocol the server selected.
    case selected(RDPProtocols, flags: UInt8)
    /// `RDP_NEG_FAILURE` with its failure code (for example 5, HYBRID_REQUIRED_BY_SERVER).
    case failure(code: UInt32)
    /// A confirm without negotiation data: standard RDP security.
    case legacy

    /// `failureCode` values of `RDP_NEG_FAILURE`.
    public static let sslRequiredByServer: UInt32 = 1
    public static let sslNotAllowedByServer: UInt32 = 2
    public static let sslCertificateNotOnServer: UInt32 = 3
    public static let inconsistentFlags: UInt32 = 4
    public static let hybridRequiredByServer: UInt32 = 5
}

/// TPKT + X.224 encoding and decoding of the two negotiation PDUs.
enum X224 {
    static let tpktVersion: UInt8 = 3
    static let connectionRequest: UInt8 = 0xE0
    static let connectionConfirm: UInt8 = 0xD0
    static let negotiationRequest: UInt8 = 0x01
    static let negotiationResponse: UInt8 = 0x02
    static let negotiationFailure: UInt8 = 0x03
    /// A Connection Request is short (cookie, routing token, negotiation and correlation data).
    static let maximumPDUBytes = 4096

    /// The length a TPKT header announces (header included), or nil when fewer than 4 bytes are known.
    static func tpktLength(_ header: some Collection<UInt8>) throws(CredSSPError) -> Int? {
        guard header.count >= 4 else { return nil }
        let bytes = Array(header.prefix(4))
        guard bytes[0] == tpktVersion else {
            throw CredSSPError(.rdpNegotiation, .illegalMessage,
                               "Not an RDP connection: TPKT version \(bytes[0]) (expected 3)")
        }
        let length = Int(bytes[2]) << 8 | Int(bytes[3])
        guard length >= 7, length <= maximumPDUBytes else {
            throw CredSSPError(.rdpNegotiation, .invalidToken, "TPKT length \(length) is out of range (7…\(maximumPDUBytes))")
        }
        return length
    }

    static func encode(_ request: RDPConnectionRequest) -> [UInt8] {
        var variable: [UInt8] = []
        if let cookie = request.cookie {
            variable += Array("Cookie: mstshash=\(cookie)\r\n".utf8)
        }
        if let protocols = request.requestedProtocols {
            variable += negotiation(type: negotiationRequest, flags: request.flags, value: protocols.rawValue)
        }
        return tpdu(code: connectionRequest, sourceReference: 0, variable: variable)
    }

    static func encode(_ confirm: RDPConnectionConfirm) -> [UInt8] {
        switch confirm {
        case .selected(let protocols, let flags):
            return tpdu(code: connectionConfirm, sourceReference: 0x1234,
                        variable: negotiation(type: negotiationResponse, flags: flags, value: protocols.rawValue))
        case .failure(let code):
            return tpdu(code: connectionConfirm, sourceReference: 0x1234,
                        variable: negotiation(type: negotiationFailure, flags: 0, value: code))
        case .legacy:
            return tpdu(code: connectionConfirm, sourceReference: 0x1234, variable: [])
        }
    }

    /// Decodes a whole TPKT holding a Connection Request.
    static func decodeRequest(_ pdu: [UInt8]) throws(CredSSPError) -> RDPConnectionRequest {
        var rest = try variablePart(pdu, code: connectionRequest, what: "Connection Request")
        var request = RDPConnectionRequest(cookie: nil, requestedProtocols: nil, flags: 0)
        // Optional cookie ("Cookie: mstshash=…") or routing token ("Cookie: msts=…"): text up to CR LF.
        if rest.starts(with: Array("Cookie:".utf8)) {
            guard let end = (0..<(rest.count - 1)).first(where: { rest[$0] == 0x0D && rest[$0 + 1] == 0x0A }) else {
                throw CredSSPError(.rdpNegotiation, .invalidToken, "The Connection Request's cookie has no CR LF")
            }
            let text = String(decoding: rest[0..<end], as: UTF8.self)
            let prefix = "Cookie: mstshash="
            if text.hasPrefix(prefix) { request.cookie = String(text.dropFirst(prefix.count)) }
            rest = Array(rest[(end + 2)...])
        }
        if !rest.isEmpty {
            let (type, flags, value) = try negotiationData(rest, what: "RDP_NEG_REQ")
            guard type == negotiationRequest else {
                throw CredSSPError(.rdpNegotiation, .invalidToken, "Expected RDP_NEG_REQ, found type \(type)")
            }
            request.flags = flags
            request.requestedProtocols = RDPProtocols(rawValue: value)
            // RDP_NEG_CORRELATION_INFO (36 bytes) may follow; nothing here needs it.
            guard rest.count == 8 || rest.count == 8 + 36 else {
                throw CredSSPError(.rdpNegotiation, .invalidToken, "\(rest.count - 8) unexpected bytes after RDP_NEG_REQ")
            }
        }
        return request
    }

    /// Decodes a whole TPKT holding a Connection Confirm.
    static func decodeConfirm(_ pdu: [UInt8]) throws(CredSSPError) -> RDPConnectionConfirm {
        let rest = try variablePart(pdu, code: connectionConfirm, what: "Connection Confirm")
        guard !rest.isEmpty else { return .legacy }
        let (type, flags, value) = try negotiationData(rest, what: "RDP_NEG_RSP")
        switch type {
        case negotiationResponse: return .selected(RDPProtocols(rawValue: value), flags: flags)
        case negotiationFailure: return .failure(code: value)
        default: throw CredSSPError(.rdpNegotiation, .invalidToken, "Expected RDP_NEG_RSP or RDP_NEG_FAILURE, found type \(type)")
        }
    }

    private static func tpdu(code: UInt8, sourceReference: UInt16, variable: [UInt8]) -> [UInt8] {
        // X.224 fixed part: length indicator, code, DST-REF, SRC-REF, class 0.
        let x224: [UInt8] = [UInt8(truncatingIfNeeded: 6 + variable.count), code, 0, 0,
                             UInt8(truncatingIfNeeded: sourceReference >> 8), UInt8(truncatingIfNeeded: sourceReference), 0]
            + variable
        let length = 4 + x224.count
        return [tpktVersion, 0, UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length)] + x224
    }

    private static func negotiation(type: UInt8, flags: UInt8, value: UInt32) -> [UInt8] {
        [type, flags, 8, 0] + (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
    }

    private static func variablePart(_ pdu: [UInt8], code: UInt8, what: String) throws(CredSSPError) -> [UInt8] {
        guard let length = try tpktLength(pdu), length == pdu.count else {
            throw CredSSPError(.rdpNegotiation, .invalidToken, "The \(what)'s TPKT length does not match its \(pdu.count) bytes")
        }
        let indicator = Int(pdu[4])
        guard indicator >= 6, 5 + indicator == pdu.count else {
            throw CredSSPError(.rdpNegotiation, .invalidToken, "The \(what)'s X.224 length indicator \(indicator) does not match")
        }
        guard pdu[5] & 0xF0 == code else {
            throw CredSSPError(.rdpNegotiation, .illegalMessage,
                               "Expected an X.224 \(what) (0x\(String(code, radix: 16))), found code 0x\(String(pdu[5], radix: 16))")
        }
        return Array(pdu[11...])
    }

    private static func negotiationData(_ bytes: [UInt8], what: String) throws(CredSSPError) -> (UInt8, UInt8, UInt32) {
        guard bytes.count >= 8, bytes[2] == 8, bytes[3] == 0 else {
            throw CredSSPError(.rdpNegotiation, .invalidToken, "The \(what) is not an 8-byte negotiation structure")
        }
        let value = (4..<8).reduce(UInt32(0)) { $0 | UInt32(bytes[$1]) << (8 * UInt32($1 - 4)) }
        return (bytes[0], bytes[1], value)
    }
}
