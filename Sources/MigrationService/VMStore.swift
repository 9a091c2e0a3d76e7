import Crypto
import Foundation
import MigrationVocabulary
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// A host's VM directory: each VM is one state file `<directory>/<name>.vhdx`; incoming
/// migrations are written to `<directory>/.staging/` and renamed into place only on commit.
public struct VMStore: Sendable, Hashable {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    /// File name extension of a VM's state file.
    public static let fileExtension = "vhdx"

    public var stagingDirectory: String { directory + "/.staging" }

    /// Path of the VM's state file.
    public func path(of vm: String) -> String { "\(directory)/\(vm).\(Self.fileExtension)" }

    /// Whether the VM is registered (its state file exists).
    public func contains(_ vm: String) -> Bool { access(path(of: vm), F_OK) == 0 }

    /// Registered VMs, sorted.
    public func list() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix("." + Self.fileExtension) && !$0.hasPrefix(".") }
            .map { String($0.dropLast(Self.fileExtension.count + 1)) }.sorted()
    }

    /// Files left in the staging directory (empty after every finished or failed migration).
    public func stagingFiles() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: stagingDirectory)) ?? []).sorted()
    }

    /// Writes a VM state file (for tests and tools).
    public func create(_ vm: String, contents: [UInt8]) throws(MigrationServiceError) {
        try Self.checkName(vm, stage: .source)
        try makeDirectories()
        guard FileManager.default.createFile(atPath: path(of: vm), contents: Data(contents)) else {
            throw .failure(.storage, .unspecifiedFailure, stage: .source, reason: "Could not create the state file of '\(vm)'")
        }
    }

    func makeDirectories() throws(MigrationServiceError) {
        do {
            try FileManager.default.createDirectory(atPath: stagingDirectory, withIntermediateDirectories: true)
        } catch {
            throw .failure(.storage, .unspecifiedFailure, stage: .destination,
                           reason: "Could not create the VM directory", detail: "\(error)".replacingOccurrences(of: directory, with: "<vmDirectory>"))
        }
    }

    /// Removes everything in the staging directory (left by a crash).
    func clearStaging() {
        for name in stagingFiles() { unlink(stagingDirectory + "/" + name) }
    }

    /// Refuses an incoming VM of `size` bytes that the file system cannot hold with `reserve` bytes
    /// left free (`statvfs` of the VM directory), or that no file can have (more than `off_t.max`):
    /// ERROR_DISK_FULL, before anything is created. The texts name no path (they go to the peer).
    func checkSpace(for vm: String, size: UInt64, reserve: UInt64, stage: MigrationStage) throws(MigrationServiceError) {
        guard off_t(exactly: size) != nil else {
            throw .failure(.storage, .diskFull, stage: stage, reason: "There is not enough space for '\(vm)'",
                           detail: "offered size \(size) bytes exceeds the largest possible file (\(off_t.max) bytes)")
        }
        var fs = statvfs()
        guard statvfs(directory, &fs) == 0 else {
            throw .failure(.storage, .unspecifiedFailure, stage: stage, reason: "Could not check the free space for '\(vm)'",
                           detail: String(cString: strerror(errno)))
        }
        let (free, overflow) = UInt64(fs.f_bavail).multipliedReportingOverflow(by: UInt64(fs.f_frsize))
        let available = overflow ? UInt64.max : free
        let needed = size.addingReportingOverflow(reserve)
        guard !needed.overflow, needed.partialValue <= available else {
            throw .failure(.storage, .diskFull, stage: stage, reason: "There is not enough space for '\(vm)'",
                           detail: "\(size) bytes offered, \(available) bytes free, \(reserve) bytes reserved")
        }
    }

    /// Longest VM name in UTF-8 bytes: `<name>.<32 hex id>.partial` must fit a file name (255 bytes).
    static let maximumNameBytes = 200

    /// VM names are file names: at most ``maximumNameBytes`` bytes, and the rules of `VirtualMachineName.problem` (1–100 characters, no
    /// path separators or other characters Windows forbids in file names, not `.`/`..`), and no
    /// leading `.` (names starting with a dot are this store's own files).
    static func checkName(_ vm: String, stage: MigrationStage) throws(MigrationServiceError) {
        let problem = VirtualMachineName.problem(vm) ?? (vm.hasPrefix(".") ? "A virtual machine name cannot start with '.'" : nil)
            ?? (vm.utf8.count > maximumNameBytes
                ? "A virtual machine name has at most \(maximumNameBytes) bytes in UTF-8 (this one has \(vm.utf8.count))" : nil)
        if let problem {
            throw .failure(.storage, .invalidArgument, stage: stage,
                           reason: "'\(vm)' is not a valid virtual machine name", detail: problem)
        }
    }
}

/// An open file read or written at offsets (`pread`/`pwrite`): safe from several tasks at once.
final class VMFile: @unchecked Sendable {
    let fd: Int32
    let path: String

    private init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit { close(fd) }

    /// The file's name without its directory: error texts go to the peer, which must not learn server paths.
    var name: String { Self.name(of: path) }

    static func name(of path: String) -> String { path.split(separator: "/").last.map(String.init) ?? path }

    static func openForReading(_ path: String, stage: MigrationStage) throws(MigrationServiceError) -> VMFile {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw .failure(.storage, errno == ENOENT ? .notFound : .unspecifiedFailure, stage: stage,
                           reason: "Could not open \(name(of: path))", detail: String(cString: strerror(errno)))
        }
        return VMFile(fd: fd, path: path)
    }

    /// Creates a new file (fails if it exists) of `size` bytes.
    static func create(_ path: String, size: UInt64, stage: MigrationStage) throws(MigrationServiceError) -> VMFile {
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw .failure(.storage, errno == EEXIST ? .alreadyExists : .unspecifiedFailure, stage: stage,
                           reason: "Could not create \(name(of: path))", detail: String(cString: strerror(errno)))
        }
        let file = VMFile(fd: fd, path: path)
        guard let length = off_t(exactly: size), ftruncate(fd, length) == 0 else {
            throw .failure(.storage, .unspecifiedFailure, stage: stage, reason: "Could not size \(file.name)",
                           detail: String(cString: strerror(errno)))
        }
        return file
    }

    var size: UInt64 {
        var st = stat()
        return fstat(fd, &st) == 0 ? UInt64(st.st_size) : 0
    }

    /// Reads up to `count` bytes at `offset` into the writable end of `buffer`.
    func read(into buffer: inout ByteBuffer, offset: UInt64, count: Int, stage: MigrationStage) throws(MigrationServiceError) {
        var done = 0
        while done < count {
            let n = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count - done) { raw in
                max(0, pread(fd, raw.baseAddress, count - done, off_t(offset) + off_t(done)))
            }
            guard n > 0 else {
                throw .failure(.storage, .unspecifiedFailure, stage: stage, reason: "Could not read \(name)",
                               detail: "short read at \(offset + UInt64(done))")
            }
            done += n
        }
    }

    /// Writes the readable bytes of `buffer` at `offset`.
    func write(_ buffer: ByteBuffer, offset: UInt64, stage: MigrationStage) throws(MigrationServiceError) {
        let ok = buffer.withUnsafeReadableBytes { raw -> Bool in
            var done = 0
            while done < raw.count {
                let n = pwrite(fd, raw.baseAddress! + done, raw.count - done, off_t(offset) + off_t(done))  // raw.count > 0 here
                if n <= 0 { return false }
                done += n
            }
            return true
        }
        guard ok else {
            throw .failure(.storage, .unspecifiedFailure, stage: stage, reason: "Could not write \(name)",
                           detail: String(cString: strerror(errno)))
        }
    }

    func sync(stage: MigrationStage) throws(MigrationServiceError) {
        guard fsync(fd) == 0 else {
            throw .failure(.storage, .unspecifiedFailure, stage: stage, reason: "Could not flush \(name)",
                           detail: String(cString: strerror(errno)))
        }
    }

    /// SHA-256 of the whole file, read in 1 MiB blocks.
    func sha256(stage: MigrationStage) throws(MigrationServiceError) -> [UInt8] {
        var hasher = SHA256()
        let total = size
        var offset: UInt64 = 0
        var block = ByteBufferAllocator().buffer(capacity: 1 << 20)
        while offset < total {
            block.clear()
            let n = Int(min(UInt64(1 << 20), total - offset))
            try read(into: &block, offset: offset, count: n, stage: stage)
            block.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
            offset += UInt64(n)
        }
        return Array(hasher.finalize())
    }
}

/// fsync of a directory (after a rename into it).
func syncDirectory(_ path: String) {
    let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if fd >= 0 {
        fsync(fd)
        close(fd)
    }
}
