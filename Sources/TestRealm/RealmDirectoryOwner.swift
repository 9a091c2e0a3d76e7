import Foundation

/// Who created a realm directory, so that a later process can tell a directory left behind by a
/// killed process (plaintext passwords, keytabs, the stash and the LDAP root password inside) from
/// one still in use.
///
/// ``TestRealm/start(_:)`` writes `.testrealm-owner` (mode 0600) into every realm directory it will
/// remove itself (not into ``TestRealm/Configuration/keepDirectory`` ones): the creating process's
/// PID, its start time in clock ticks since boot (`/proc/PID/stat` field 22, so a reused PID is not
/// mistaken for the owner) and the boot ID. ``TestRealm/removeStaleDirectories(in:)`` removes only
/// directories that carry such a file and whose owner is gone.
struct RealmDirectoryOwner: Sendable, Hashable {
    static let fileName = ".testrealm-owner"
    static let directoryPrefix = "testrealm-"

    var pid: Int32
    var startTime: UInt64
    var bootID: String

    /// This process.
    static func current() -> RealmDirectoryOwner? {
        let pid = getpid()
        guard let start = startTime(of: pid) else { return nil }
        return RealmDirectoryOwner(pid: pid, startTime: start, bootID: currentBootID())
    }

    var text: String { "testrealm-owner 1 pid=\(pid) start=\(startTime) boot=\(bootID)\n" }

    /// Parses ``text``; nil for anything else (such a directory is never removed).
    init?(text: String) {
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard fields.count == 5, fields[0] == "testrealm-owner", fields[1] == "1" else { return nil }
        func value(_ field: Substring, _ key: String) -> Substring? {
            field.hasPrefix(key + "=") ? field.dropFirst(key.count + 1) : nil
        }
        guard let p = value(fields[2], "pid").flatMap({ Int32($0) }), p > 0,
              let s = value(fields[3], "start").flatMap({ UInt64($0) }),
              let b = value(fields[4], "boot"), !b.isEmpty else { return nil }
        self.init(pid: p, startTime: s, bootID: String(b))
    }

    init(pid: Int32, startTime: UInt64, bootID: String) {
        self.pid = pid
        self.startTime = startTime
        self.bootID = bootID
    }

    /// True while the process that wrote this record still runs (same boot, same PID, same start time).
    var isAlive: Bool {
        guard bootID == Self.currentBootID() else { return false }
        guard let start = Self.startTime(of: pid) else { return false }
        return start == startTime
    }

    /// Writes the record into `directory` (created 0600, never through a symlink).
    func write(into directory: String) throws {
        let path = directory + "/" + Self.fileName
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw TestRealmError.fileSystem(path: path, reason: String(cString: strerror(errno))) }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        do {
            try handle.write(contentsOf: Data(text.utf8))
            try handle.close()
        } catch {
            throw TestRealmError.fileSystem(path: path, reason: "\(error)")
        }
    }

    /// Field 22 of `/proc/PID/stat` (after the parenthesised command name, which may hold spaces).
    static func startTime(of pid: Int32) -> UInt64? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let rest = stat[stat.index(after: close)...].split(separator: " ")
        // rest[0] is field 3 (state); field 22 is rest[19].
        guard rest.count > 19 else { return nil }
        return UInt64(rest[19])
    }

    static func currentBootID() -> String {
        let text = (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)) ?? ""
        let id = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return id.isEmpty ? "unknown" : id
    }
}

extension TestRealm {
    /// Removes realm directories in `parent` (default: the temporary directory) that a process
    /// which no longer runs created and did not remove — killed with SIGKILL, or crashed. Returns
    /// the paths removed.
    ///
    /// Only directories this library created and would have removed itself are touched: the name
    /// starts with `testrealm-`, it is a real directory (not a symlink) owned by this user, and it
    /// holds a well-formed `.testrealm-owner` record (a regular file owned by this user) whose
    /// process is gone (another boot, no such PID, or the PID now belongs to a process started at
    /// another time). Directories of running processes, ``Configuration/keepDirectory`` realms and
    /// anything else are left alone.
    @discardableResult
    public static func removeStaleDirectories(in parent: String? = nil) -> [String] {
        let parent = parent ?? NSTemporaryDirectory()
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: parent) else { return [] }
        var removed: [String] = []
        for name in names.sorted() where name.hasPrefix(RealmDirectoryOwner.directoryPrefix) {
            let path = (parent as NSString).appendingPathComponent(name)
            guard ownedDirectory(path, isDirectory: true) else { continue }
            let marker = path + "/" + RealmDirectoryOwner.fileName
            guard ownedDirectory(marker, isDirectory: false),
                  let text = try? String(contentsOfFile: marker, encoding: .utf8),
                  let owner = RealmDirectoryOwner(text: text), !owner.isAlive else { continue }
            if (try? fm.removeItem(atPath: path)) != nil { removed.append(path) }
        }
        return removed
    }

    /// `lstat`: a directory (or regular file) owned by this user, not a symlink.
    private static func ownedDirectory(_ path: String, isDirectory: Bool) -> Bool {
        var st = stat()
        guard lstat(path, &st) == 0, st.st_uid == getuid() else { return false }
        let type = st.st_mode & S_IFMT
        return type == (isDirectory ? S_IFDIR : S_IFREG)
    }

    /// On SIGINT, SIGTERM or SIGHUP: kill the daemons of every realm still alive in this process
    /// (by their PIDs), remove their directories, then end the process with the same signal (its
    /// default action). For programs such as `migauth scenario run --real` whose realms hold
    /// secrets; call once, early. A SIGKILL cannot be caught: ``removeStaleDirectories(in:)``
    /// removes what it leaves at the next start.
    public static func removeDirectoriesOnSignals() {
        CleanupRegistry.shared.installSignalHandlers([SIGINT, SIGTERM, SIGHUP])
    }
}
