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
///
/// A target that is a symbolic link is not replaced: the file it points to is (the temporary file
/// is made next to that file). The new file keeps the old one's permission bits (0600 stays 0600);
/// a new target gets 0644 less the umask.
public enum DurableFile {
    /// An I/O failure, with the failing call and `errno`'s text.
    public struct IOError: Error, Sendable, CustomStringConvertible {
        public let path: String
        public let operation: String
        public let errno: Int32
        public var description: String { "\(operation) \(path): \(String(cString: strerror(errno)))" }
    }

    /// Atomically and durably replaces the file at `path` with `data`.
    public static func write(_ data: Data, to target: String) throws(IOError) {
        let path = try resolvingSymlinks(target)
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        let tmp = url.deletingLastPathComponent()
            .appendingPathComponent("\(temporaryPrefix(of: url.lastPathComponent))\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path

        var existing = stat()
        let mode: mode_t? = stat(path, &existing) == 0 ? existing.st_mode & 0o7777 : nil
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode ?? 0o644)
        guard fd >= 0 else { throw IOError(path: tmp, operation: "open", errno: errno) }
        var ok = false
        defer { if !ok { unlink(tmp) } }
        do {
            defer { close(fd) }
            // open's mode is cut by the umask: set the old file's bits exactly (and its owner, when allowed).
            if let mode {
                guard fchmod(fd, mode) == 0 else { throw IOError(path: tmp, operation: "fchmod", errno: errno) }
                _ = fchown(fd, existing.st_uid, existing.st_gid)
            }
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

    /// Names of this writer's temporary files for a target named `name` start with this (`.<name>.tmp-`),
    /// followed by the writer's pid.
    static func temporaryPrefix(of name: String) -> String { ".\(name).tmp-" }

    /// The file `path` names after following symbolic links (at most 40, as the kernel does); the path
    /// itself when it is not a link. A dangling link resolves to the file it would create.
    public static func resolvingSymlinks(_ path: String) throws(IOError) -> String {
        var current = path
        for _ in 0..<40 {
            var st = stat()
            guard lstat(current, &st) == 0, (st.st_mode & S_IFMT) == S_IFLNK else { return current }
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = readlink(current, &buffer, buffer.count - 1)
            guard n >= 0 else { throw IOError(path: current, operation: "readlink", errno: errno) }
            let target = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            current = target.hasPrefix("/") ? target
                : URL(fileURLWithPath: current).deletingLastPathComponent().appendingPathComponent(target).path
        }
        throw IOError(path: path, operation: "resolve", errno: ELOOP)
    }

    /// Removes temporary files that killed writers left next to `path` (their pid no longer runs).
    /// Call it while holding the target's lock, so no live writer of this process family is mid-write.
    public static func removeStaleTemporaries(of path: String) {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        let prefix = temporaryPrefix(of: url.lastPathComponent)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory.isEmpty ? "." : directory) else { return }
        for name in names where name.hasPrefix(prefix) {
            let rest = name.dropFirst(prefix.count)
            guard let dash = rest.firstIndex(of: "-"), let pid = pid_t(rest[..<dash]) else { continue }
            if pid == getpid() { continue }
            if kill(pid, 0) == 0 || errno == EPERM { continue }   // its writer still runs
            unlink(url.deletingLastPathComponent().appendingPathComponent(name).path)
        }
    }
}

/// An exclusive advisory lock (`flock`) on a file that ``DurableFile`` replaces: serializes
/// read-modify-write cycles across processes. The lock is taken on the file itself; since a writer
/// replaces the file (a new inode), a waiter that gets the lock on the old inode sees that the path now
/// names another file and locks that one instead. No lock file is left behind.
public final class FileLock {
    private let fd: Int32
    public let path: String

    /// Waits up to `timeout` seconds for the lock on `target` (after following symbolic links).
    /// Returns nil when the file does not exist (there is nothing to lose yet).
    public init?(for target: String, timeout: Double = 30) throws(DurableFile.IOError) {
        path = try DurableFile.resolvingSymlinks(target)
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                if errno == ENOENT { return nil }
                throw DurableFile.IOError(path: path, operation: "open", errno: errno)
            }
            var locked = false
            while !locked {
                if flock(fd, LOCK_EX | LOCK_NB) == 0 { locked = true; break }
                let e = errno
                guard e == EWOULDBLOCK || e == EINTR, Date() < deadline else {
                    close(fd)
                    throw DurableFile.IOError(path: path, operation: "flock", errno: e)
                }
                usleep(2_000)
            }
            // Still the file the path names? (A writer may have renamed a new one over it meanwhile.)
            var held = stat(), current = stat()
            if fstat(fd, &held) == 0, stat(path, &current) == 0, held.st_ino == current.st_ino, held.st_dev == current.st_dev {
                self.fd = fd
                return
            }
            flock(fd, LOCK_UN)
            close(fd)
            guard Date() < deadline else { throw DurableFile.IOError(path: path, operation: "flock", errno: ETIMEDOUT) }
        }
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}

#if canImport(Glibc)
private let posixWrite = Glibc.write
#elseif canImport(Darwin)
private let posixWrite = Darwin.write
#endif
