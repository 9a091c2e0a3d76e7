import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Crash-safe whole-file replacement.
///
/// ``write(_:to:)`` writes the bytes to a fresh temporary file in the same directory, `fsync`s
/// it, `rename`s it over the target (atomic on POSIX file systems) and `fsync`s the directory so
/// the rename itself is durable. A crash at any point leaves either the old file or the new one,
/// never a mix; on any error the temporary file is removed and the target is untouched.
public enum DurableFile {
    /// An I/O failure, with the failing call and `errno`'s text.
    public struct IOError: Error, Sendable, CustomStringConvertible {
        public let path: String
        public let operation: String
        public let errno: Int32
        public var description: String { "\(operation) \(path): \(String(cString: strerror(errno)))" }
    }

    /// Atomically and durably replaces the file at `path` with `data`.
    public static func write(_ data: Data, to path: String) throws(IOError) {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        let tmp = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path

        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw IOError(path: tmp, operation: "open", errno: errno) }
        var ok = false
        defer { if !ok { unlink(tmp) } }
        do {
            defer { close(fd) }
            var written = 0
            let failure: Int32? = data.withUnsafeBytes { raw -> Int32? in
                guard let base = raw.baseAddress else { return nil }
                while written < raw.count {
                    let n = posixWrite(fd, base + written, raw.count - written)
                    if n < 0 {
                        if errno == EINTR { continue }
                        return errno
                    }
                    written += n
                }
                return nil
            }
            if let failure { throw IOError(path: tmp, operation: "write", errno: failure) }
            guard fsync(fd) == 0 else { throw IOError(path: tmp, operation: "fsync", errno: errno) }
        }
        guard rename(tmp, path) == 0 else { throw IOError(path: path, operation: "rename", errno: errno) }
        ok = true
        let dfd = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dfd >= 0 else { throw IOError(path: directory, operation: "open", errno: errno) }
        defer { close(dfd) }
        guard fsync(dfd) == 0 else { throw IOError(path: directory, operation: "fsync", errno: errno) }
    }
}

#if canImport(Glibc)
private let posixWrite = Glibc.write
#elseif canImport(Darwin)
private let posixWrite = Darwin.write
#endif
