import Foundation
import NIOCore
import NIOExtras
import NIOPosix
import Synchronization

/// A QMP monitor connection over the unix socket a QEMU process listens on (`-qmp unix:PATH,server=on,wait=off`).
///
/// One task owns the socket: it writes each command and reads lines until the command's reply
/// (`return` or `error`); asynchronous events in between are skipped. Commands run one at a time,
/// in the order they were asked. Nothing blocks a thread: NIO does the I/O. A command whose answer does not come
/// within its timeout fails with `.timeout`: QEMU answers from its main loop, which a stuck incoming migration can
/// block (QEMU 7.2 waits on a semaphore there for multifd channels that ended at a packet boundary).
public final class QMPClient: Sendable {
    private struct Request: Sendable {
        let line: ByteBuffer
        let reply: Reply
    }

    /// The answer to one command, given once: by the monitor, by its timeout, or by the connection's end.
    private final class Reply: Sendable {
        private let waiting: Mutex<CheckedContinuation<JSONValue, any Error>?>

        init(_ continuation: CheckedContinuation<JSONValue, any Error>) { waiting = Mutex(continuation) }

        func resume(returning value: JSONValue) { waiting.withLock { $0.take() }?.resume(returning: value) }
        func resume(throwing error: any Error) { waiting.withLock { $0.take() }?.resume(throwing: error) }
    }

    /// How long a command waits for its answer unless its caller says otherwise.
    public static let defaultTimeout: Duration = .seconds(30)

    private let requests: AsyncStream<Request>.Continuation
    private let owner: Task<Void, Never>
    /// The socket's path.
    public let path: String

    private init(path: String, requests: AsyncStream<Request>.Continuation, owner: Task<Void, Never>) {
        self.path = path
        self.requests = requests
        self.owner = owner
    }

    /// Connects to `path`, reads the greeting and leaves capability negotiation (`qmp_capabilities`).
    public static func connect(path: String) async throws(QEMUError) -> QMPClient {
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(unixDomainSocketPath: path) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineBasedFrameDecoder()))
                        return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw QEMUError(.monitor, "cannot connect to the QMP socket \(path): \(error)")
        }
        let (stream, continuation) = AsyncStream.makeStream(of: Request.self)
        let greeting = AsyncStream.makeStream(of: Result<Void, QEMUError>.self)
        let owner = Task {
            await Self.serve(channel, requests: stream, greeting: greeting.continuation)
        }
        let client = QMPClient(path: path, requests: continuation, owner: owner)
        var iterator = greeting.stream.makeAsyncIterator()
        switch await iterator.next() {
        case .success?: break
        case .failure(let error)?:
            client.close()
            throw error
        case nil:
            client.close()
            throw QEMUError(.monitor, "the QMP socket \(path) closed before its greeting")
        }
        _ = try await client.execute("qmp_capabilities")
        return client
    }

    /// A client with no connection: every command fails with `.monitor`.
    static func unconnected(path: String) -> QMPClient {
        let (_, continuation) = AsyncStream.makeStream(of: Request.self)
        continuation.finish()
        return QMPClient(path: path, requests: continuation, owner: Task {})
    }

    /// Runs `command` with `arguments` and returns its `return` value; a QMP `error` throws `.command`, no answer
    /// within `timeout` throws `.timeout` (the command may still run; later commands queue behind it).
    @discardableResult
    public func execute(_ command: String, _ arguments: [String: JSONValue]? = nil,
                        timeout: Duration = QMPClient.defaultTimeout) async throws(QEMUError) -> JSONValue {
        var object: [String: JSONValue] = ["execute": .string(command)]
        if let arguments { object["arguments"] = .object(arguments) }
        var line = ByteBufferAllocator().buffer(capacity: 128)
        line.writeString(JSONValue.object(object).description)
        line.writeString("\n")
        let sent = line
        do {
            let path = path
            let timer = Mutex<Task<Void, Never>?>(nil)
            defer { timer.withLock { $0 }?.cancel() }
            return try await withCheckedThrowingContinuation { continuation in
                let reply = Reply(continuation)
                timer.withLock {
                    $0 = Task {
                        guard (try? await Task.sleep(for: timeout)) != nil else { return }
                        reply.resume(throwing: QEMUError(.timeout, "\(command): no answer from \(path) within \(timeout)"))
                    }
                }
                if case .terminated = requests.yield(Request(line: sent, reply: reply)) {
                    reply.resume(throwing: QEMUError(.monitor, "the QMP connection \(path) is closed"))
                }
            }
        } catch let error as QEMUError {
            throw error
        } catch {
            throw QEMUError(.monitor, "\(command): \(error)")
        }
    }

    /// Closes the monitor connection (commands asked afterwards fail with `.monitor`).
    public func close() {
        requests.finish()
    }

    /// Waits until the owning task has closed the socket.
    public func closed() async {
        requests.finish()
        await owner.value
    }

    private static func serve(_ channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>, requests: AsyncStream<Request>,
                              greeting: AsyncStream<Result<Void, QEMUError>>.Continuation) async {
        var pendingFailure: QEMUError? = nil
        do {
            try await channel.executeThenClose { inbound, outbound in
                var lines = inbound.makeAsyncIterator()
                guard let first = try await lines.next(), let hello = decode(first), hello["QMP"] != nil else {
                    greeting.yield(.failure(QEMUError(.malformed, "no QMP greeting")))
                    greeting.finish()
                    return
                }
                greeting.yield(.success(()))
                greeting.finish()
                for await request in requests {
                    if let pendingFailure {
                        request.reply.resume(throwing: pendingFailure)
                        continue
                    }
                    do {
                        try await outbound.write(request.line)
                        while true {
                            guard let raw = try await lines.next() else {
                                throw QEMUError(.monitor, "QEMU closed its monitor")
                            }
                            guard let reply = decode(raw) else {
                                throw QEMUError(.malformed, "not JSON: \(String(buffer: raw).prefix(200))")
                            }
                            if reply["event"] != nil { continue }
                            if let value = reply["return"] {
                                request.reply.resume(returning: value)
                            } else if let error = reply["error"] {
                                request.reply.resume(throwing: QEMUError(.command, error["desc"]?.string ?? "\(error)",
                                                                         errorClass: error["class"]?.string))
                            } else {
                                throw QEMUError(.malformed, "unexpected reply \(reply)")
                            }
                            break
                        }
                    } catch {
                        let failure = error as? QEMUError ?? QEMUError(.monitor, "\(error)")
                        request.reply.resume(throwing: failure)
                        pendingFailure = failure
                    }
                }
            }
        } catch {
            greeting.yield(.failure(QEMUError(.monitor, "\(error)")))
            greeting.finish()
        }
        // Requests that arrive after the socket is gone fail at once (the stream is finished).
        for await request in requests {
            request.reply.resume(throwing: pendingFailure ?? QEMUError(.monitor, "the QMP connection is closed"))
        }
    }

    private static func decode(_ line: ByteBuffer) -> JSONValue? {
        guard let bytes = line.getBytes(at: line.readerIndex, length: line.readableBytes) else { return nil }
        return try? JSONDecoder().decode(JSONValue.self, from: Data(bytes))
    }
}
