import Foundation
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Errors of the test sockets.
struct SocketError: Error, CustomStringConvertible {
    let description: String
    init(_ what: String) { description = "\(what): \(String(cString: strerror(errno)))" }
}

/// A blocking TCP connection on 127.0.0.1 with a receive timeout, closed on deinit.
final class LoopbackSocket: @unchecked Sendable {
    let fd: Int32

    init(fd: Int32) {
        self.fd = fd
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { close(fd) }

    /// Connects to 127.0.0.1:`port`.
    static func connect(port: UInt16) throws -> LoopbackSocket {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SocketError("socket") }
        var address = LoopbackListener.address(port: port)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else { close(fd); throw SocketError("connect 127.0.0.1:\(port)") }
        return LoopbackSocket(fd: fd)
    }

    func write(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw SocketError("send") }
            offset += n
        }
    }

    func read(count: Int) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        var offset = 0
        while offset < count {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + offset, count - offset, 0) }
            guard n > 0 else { throw SocketError(n == 0 ? "peer closed" : "recv") }
            offset += n
        }
        return buffer
    }

    /// Sends a 4-byte big-endian length and the frame.
    func sendFrame(_ frame: [UInt8]) throws {
        let n = UInt32(frame.count)
        try write([UInt8(n >> 24), UInt8((n >> 16) & 0xFF), UInt8((n >> 8) & 0xFF), UInt8(n & 0xFF)] + frame)
    }

    /// Reads one length-prefixed frame (at most 16 MiB).
    func receiveFrame() throws -> [UInt8] {
        let header = try read(count: 4)
        let n = header.reduce(0) { ($0 << 8) | Int($1) }
        guard n <= 16 << 20 else { throw SocketError("frame too large (\(n))") }
        return try read(count: n)
    }
}

/// A listening socket on 127.0.0.1 at a free port.
final class LoopbackListener: @unchecked Sendable {
    let fd: Int32
    let port: UInt16

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SocketError("socket") }
        self.fd = fd
        var address = Self.address(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 8) == 0 else { close(fd); throw SocketError("bind/listen") }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        port = UInt16(bigEndian: actual.sin_port)
    }

    deinit { close(fd) }

    /// Waits (at most 30 s) for one connection.
    func accept() throws -> LoopbackSocket {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, 30_000) == 1 else { throw SocketError("accept timeout") }
        let client = Glibc.accept(fd, nil, nil)
        guard client >= 0 else { throw SocketError("accept") }
        return LoopbackSocket(fd: client)
    }

    static func address(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    /// A port that was free a moment ago (for programs that bind it themselves).
    static func freePort() throws -> UInt16 {
        try LoopbackListener().port
    }
}

/// Runs blocking work (sockets, GSSAPI calls that talk to the KDC) on the tests' NIO thread pool
/// (`TestSupport.BlockingWork`), so it never holds a thread of the cooperative pool.
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await BlockingWork.run(body)
}
