import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Loopback port helpers: find free ports, hold a port closed, probe a listener.
enum LoopbackPort {
    /// A port on 127.0.0.1 that is free for both TCP and UDP right now (bind to port 0, then check UDP).
    static func free(on host: String = "127.0.0.1") throws -> UInt16 {
        for _ in 0..<20 {
            let tcp = try boundSocket(type: stream, port: 0, host: host)
            defer { close(tcp.fd) }
            if let udp = try? boundSocket(type: datagram, port: tcp.port, host: host) {
                close(udp.fd)
                return tcp.port
            }
        }
        throw TestRealmError.noFreePort(reason: "no port free for both TCP and UDP after 20 tries")
    }

    /// A TCP socket bound to a free loopback port but never listening: connections are refused
    /// at once, and no one else can take the port while it is held.
    static func holdClosed() throws -> (fd: Int32, port: UInt16) {
        try boundSocket(type: stream, port: 0)
    }

    /// True when something accepts a TCP connection on 127.0.0.1:`port`.
    static func acceptsConnections(_ port: UInt16, host: String = "127.0.0.1") -> Bool {
        let fd = socket(AF_INET, stream, 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = loopback(port, host: host)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        return result == 0
    }

    /// True when something accepts a connection on the Unix socket at `path` (slapd's ldapi).
    static func acceptsConnections(unixSocket path: String) -> Bool {
        let fd = socket(AF_UNIX, stream, 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        return result == 0
    }

    static func closeHeld(_ fd: Int32) { close(fd) }

    /// Binds `port` for TCP (listening) and UDP, as another program would; returns both sockets.
    static func occupy(_ port: UInt16) throws -> [Int32] {
        let tcp = try boundSocket(type: stream, port: port)
        listen(tcp.fd, 1)
        do {
            let udp = try boundSocket(type: datagram, port: port)
            return [tcp.fd, udp.fd]
        } catch {
            close(tcp.fd)
            throw error
        }
    }

    #if canImport(Glibc) || canImport(Musl)
    private static let stream = Int32(SOCK_STREAM.rawValue)
    private static let datagram = Int32(SOCK_DGRAM.rawValue)
    #else
    private static let stream = SOCK_STREAM
    private static let datagram = SOCK_DGRAM
    #endif

    private static func loopback(_ port: UInt16, host: String = "127.0.0.1") -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr(host)
        return address
    }

    private static func boundSocket(type: Int32, port: UInt16, host: String = "127.0.0.1") throws -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, type, 0)
        guard fd >= 0 else { throw TestRealmError.noFreePort(reason: "socket(): errno \(errno)") }
        var address = loopback(port, host: host)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else {
            let code = errno
            close(fd)
            throw TestRealmError.noFreePort(reason: "bind(\(host):\(port)): errno \(code)")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else {
            close(fd)
            throw TestRealmError.noFreePort(reason: "getsockname(): errno \(errno)")
        }
        return (fd, UInt16(bigEndian: actual.sin_port))
    }
}
