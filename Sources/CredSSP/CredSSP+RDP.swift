import NIOCore

/// The bytes of a stream transport (RDP's TCP connection) as they arrive, cut into TPKTs and TLS records.
struct RDPByteStream<Chunks: AsyncIteratorProtocol> where Chunks.Element == [UInt8] {
    private var chunks: Chunks
    private var buffer: [UInt8] = []
    /// TLSCiphertext.length is at most 2^14 + 2048.
    static var maximumRecordBytes: Int { 5 + 16384 + 2048 }

    init(_ chunks: Chunks) { self.chunks = chunks }

    /// Reads until `count` bytes are buffered; false when the stream ends first.
    private mutating func fill(_ count: Int) async throws(CredSSPError) -> Bool {
        while buffer.count < count {
            let chunk: [UInt8]?
            do { chunk = try await chunks.next() } catch {
                throw CredSSPError.transport("Cannot read from the peer", error)
            }
            guard let chunk else { return false }
            buffer += chunk
        }
        return true
    }

    /// One whole TPKT (an X.224 negotiation PDU).
    mutating func readTPKT() async throws(CredSSPError) -> [UInt8] {
        guard try await fill(4) else {
            throw CredSSPError.transport("The peer closed the connection before the X.224 negotiation")
        }
        guard let length = try X224.tpktLength(buffer) else {
            throw CredSSPError.transport("The peer closed the connection before the X.224 negotiation")
        }
        guard try await fill(length) else {
            throw CredSSPError.transport("The peer closed the connection inside an X.224 PDU")
        }
        defer { buffer.removeFirst(length) }
        return Array(buffer[0..<length])
    }

    /// Every whole TLS record buffered once at least one is (what a CredSSP state machine takes as one input);
    /// nil when the stream ends at a record boundary.
    mutating func readTLSRecords() async throws(CredSSPError) -> [UInt8]? {
        var end = 0
        while true {
            var cursor = 0
            while buffer.count >= cursor + 5 {
                let type = buffer[cursor], major = buffer[cursor + 1]
                guard (20...24).contains(type), major == 3 else {
                    throw CredSSPError(.tls, .illegalMessage,
                                       "The peer sent bytes that are not a TLS record (type \(type), version \(major).x)")
                }
                let length = 5 + (Int(buffer[cursor + 3]) << 8 | Int(buffer[cursor + 4]))
                guard length <= Self.maximumRecordBytes else {
                    throw CredSSPError.tooLarge("TLS record", length, limit: Self.maximumRecordBytes)
                }
                guard buffer.count >= cursor + length else { break }
                cursor += length
            }
            end = cursor
            if end > 0 { break }
            let wanted = buffer.count + 1
            guard try await fill(wanted) else {
                if buffer.isEmpty { return nil }
                throw CredSSPError.transport("The peer closed the connection inside a TLS record")
            }
        }
        defer { buffer.removeFirst(end) }
        return Array(buffer[0..<end])
    }
}

extension CredSSPServer {
    /// Runs RDP's security negotiation and then the whole server exchange on a byte stream (an RDP client's TCP
    /// connection, e.g. `xfreerdp /auth-only`), and returns the delegated credentials.
    ///
    /// Reads the client's X.224 Connection Request; when it offers CredSSP (``RDPProtocols/hybrid``) answers with a
    /// Connection Confirm selecting it, otherwise with `RDP_NEG_FAILURE` HYBRID_REQUIRED_BY_SERVER and throws
    /// ``CredSSPError/Kind/rdpNegotiation``. Then TLS and CredSSP run directly on the stream: TSRequests may arrive
    /// in several pieces, and nothing answers a TLS 1.3 Finished. On failure ``CredSSPError/replyToPeer`` (the
    /// TSRequest with `errorCode`) is sent before throwing; closing the connection is the caller's.
    /// - Parameters:
    ///   - stream: the client's bytes as they arrive (no framing).
    ///   - send: writes bytes to the client.
    ///   - connectionRequest: called with the client's decoded Connection Request (cookie, offered protocols).
    public nonisolated func runRDP<Chunks: AsyncSequence>(
        stream: Chunks, send: ([UInt8]) async throws -> Void,
        connectionRequest: (RDPConnectionRequest) -> Void = { _ in }
    ) async throws(CredSSPError) -> CredSSPCredentials where Chunks.Element == [UInt8] {
        func write(_ bytes: [UInt8]) async throws(CredSSPError) {
            guard !bytes.isEmpty else { return }
            do { try await send(bytes) } catch { throw CredSSPError.transport("Cannot send to the client", error) }
        }
        var reader = RDPByteStream(stream.makeAsyncIterator())
        let request = try X224.decodeRequest(try await reader.readTPKT())
        connectionRequest(request)
        guard let offered = request.requestedProtocols, offered.contains(.hybrid) else {
            try await write(X224.encode(RDPConnectionConfirm.failure(code: RDPConnectionConfirm.hybridRequiredByServer)))
            throw CredSSPError(.rdpNegotiation, .unsupportedFunction,
                               "The RDP client does not offer CredSSP (PROTOCOL_HYBRID); it offers "
                               + (request.requestedProtocols.map { "0x\(String($0.rawValue, radix: 16))" } ?? "standard RDP security only"))
        }
        try await write(X224.encode(RDPConnectionConfirm.selected(.hybrid, flags: 0)))
        await useByteStream()
        while let records = try await reader.readTLSRecords() {
            let next: CredSSPServerStep
            do {
                next = try await step(records)
            } catch {
                if let reply = error.replyToPeer { try? await send(reply) }
                throw error
            }
            switch next {
            case .send(let bytes): try await write(bytes)
            case .finished(let credentials):
                // The client goes on with RDP (MCS Connect Initial, possibly in the same records as the
                // credentials): not this endpoint's business.
                return credentials
            }
        }
        throw CredSSPError.transport("The client closed the connection before the CredSSP exchange finished")
    }

    /// ``runRDP(stream:send:connectionRequest:)`` over a NIO channel that carries the raw TCP bytes (no framing
    /// handlers).
    public nonisolated func runRDP(inbound: NIOAsyncChannelInboundStream<ByteBuffer>,
                                   outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
                                   connectionRequest: (RDPConnectionRequest) -> Void = { _ in })
        async throws(CredSSPError) -> CredSSPCredentials
    {
        try await runRDP(stream: inbound.map { Array($0.readableBytesView) },
                         send: { try await outbound.write(ByteBuffer(bytes: $0)) }, connectionRequest: connectionRequest)
    }
}

extension CredSSPClient {
    /// Runs RDP's security negotiation and then the whole client exchange on a byte stream (a TCP connection to an
    /// RDP server with NLA, e.g. `freerdp-shadow-cli /sec:nla`); returns once the encrypted credentials are sent.
    ///
    /// Sends `request` (by default offering TLS and CredSSP) as an X.224 Connection Request and requires a
    /// Connection Confirm that selects ``RDPProtocols/hybrid``; a refusal (`RDP_NEG_FAILURE`) or another choice is
    /// ``CredSSPError/Kind/rdpNegotiation``. Closing the connection is the caller's.
    public nonisolated func runRDP<Chunks: AsyncSequence>(
        stream: Chunks, send: ([UInt8]) async throws -> Void, request: RDPConnectionRequest = RDPConnectionRequest()
    ) async throws(CredSSPError) where Chunks.Element == [UInt8] {
        func write(_ bytes: [UInt8]) async throws(CredSSPError) {
            guard !bytes.isEmpty else { return }
            do { try await send(bytes) } catch { throw CredSSPError.transport("Cannot send to the server", error) }
        }
        var reader = RDPByteStream(stream.makeAsyncIterator())
        try await write(X224.encode(request))
        switch try X224.decodeConfirm(try await reader.readTPKT()) {
        case .selected(let protocols, _) where protocols == .hybrid:
            break
        case .selected(let protocols, _):
            throw CredSSPError(.rdpNegotiation, .unsupportedFunction,
                               "The RDP server selected protocol 0x\(String(protocols.rawValue, radix: 16)), not CredSSP (PROTOCOL_HYBRID)")
        case .failure(let code):
            throw CredSSPError(.rdpNegotiation, .unsupportedFunction,
                               "The RDP server refused the negotiation (RDP_NEG_FAILURE code \(code))")
        case .legacy:
            throw CredSSPError(.rdpNegotiation, .unsupportedFunction,
                               "The RDP server speaks only standard RDP security, not CredSSP")
        }
        await useByteStream()
        guard case .send(let hello) = try await step(nil) else {
            throw CredSSPError.unexpected("The client finished before sending its ClientHello")
        }
        try await write(hello)
        while let records = try await reader.readTLSRecords() {
            switch try await step(records) {
            case .send(let bytes):
                try await write(bytes)
            case .finished(let bytes):
                try await write(bytes)
                return
            }
        }
        throw CredSSPError.transport("The server closed the connection before the CredSSP exchange finished")
    }

    /// ``runRDP(stream:send:request:)`` over a NIO channel that carries the raw TCP bytes (no framing handlers).
    public nonisolated func runRDP(inbound: NIOAsyncChannelInboundStream<ByteBuffer>,
                                   outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
                                   request: RDPConnectionRequest = RDPConnectionRequest()) async throws(CredSSPError)
    {
        try await runRDP(stream: inbound.map { Array($0.readableBytesView) },
                         send: { try await outbound.write(ByteBuffer(bytes: $0)) }, request: request)
    }
}
