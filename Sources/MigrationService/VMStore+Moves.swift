import Foundation
import WindowsStatus
#if canImport(Glibc)
import Glibc
#endif

extension WindowsStatus {
    /// `ERROR_BUSY`: the VM is already being moved.
    public static let busy = WindowsStatus(code: 0x8007_00AA, symbol: "ERROR_BUSY", text: "The requested resource is in use.")
    /// `ERROR_INVALID_STATE`: the VM is not in a state that can be moved (its QEMU is not running).
    public static let invalidState = WindowsStatus(code: 0x8007_139F, symbol: "ERROR_INVALID_STATE",
                                                   text: "The group or resource is not in the correct state to perform the requested operation.")
}

/// The source's lock on one VM for the whole of a move: an exclusive `flock` on
/// `<vmDirectory>/.locks/<vm>.lock`, so a second move of the same VM — from this daemon or from any other
/// process on the host — is refused at once. Released (and its descriptor closed) by `release()` or at deinit.
final class VMMoveLock: @unchecked Sendable {
    private var fd: Int32

    private init(fd: Int32) { self.fd = fd }

    deinit { release() }

    /// Takes the lock or throws `ERROR_BUSY` naming the VM.
    static func acquire(_ vm: String, in store: VMStore, host: String) throws(MigrationServiceError) -> VMMoveLock {
        let directory = store.directory + "/.locks"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let fd = open("\(directory)/\(vm).lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw .failure(.storage, .unspecifiedFailure, stage: .source, reason: "Could not lock '\(vm)' on host \(host)",
                           detail: String(cString: strerror(errno)))
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw .failure(.storage, .busy, stage: .source,
                           reason: "Virtual machine '\(vm)' is already being moved from host \(host)",
                           detail: "another move holds the lock on '\(vm)' until it ends (the VM is locked at the source for the whole move)")
        }
        return VMMoveLock(fd: fd)
    }

    func release() {
        guard fd >= 0 else { return }
        flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }
}

/// A state file the source let go of: moved out of its VMs into `.outgoing/` just before it sent `commit`,
/// deleted once the destination answered `committed`, put back when the destination answered with an error.
/// One left behind (the source died, or the link broke, after `commit`) is an uncertain move: the VM is
/// registered at the destination if the commit arrived there, and nowhere otherwise; this copy is whole.
public struct UncertainMove: Sendable, Hashable {
    public var vm: String
    public var migrationID: String
    /// The file in `.outgoing/`.
    public var path: String
}

extension VMStore {
    /// Where state files wait while their commit is in flight.
    public var outgoingDirectory: String { directory + "/.outgoing" }

    /// Moves the VM's state file out of the registered VMs (into `.outgoing/`); returns its new path.
    func letGo(_ vm: String, id: MigrationID) throws(MigrationServiceError) -> String {
        try? FileManager.default.createDirectory(atPath: outgoingDirectory, withIntermediateDirectories: true)
        let outgoing = "\(outgoingDirectory)/\(vm).\(id).\(Self.fileExtension)"
        guard rename(path(of: vm), outgoing) == 0 else {
            throw .failure(.storage, .unspecifiedFailure, stage: .source, reason: "Could not release '\(vm)'",
                           detail: String(cString: strerror(errno)))
        }
        syncDirectory(outgoingDirectory)
        syncDirectory(directory)
        return outgoing
    }

    /// Puts a let-go state file back (the destination refused the commit): never over a VM of that name.
    func takeBack(_ vm: String, from outgoing: String) {
        if link(outgoing, path(of: vm)) == 0 { unlink(outgoing) }
        syncDirectory(directory)
        syncDirectory(outgoingDirectory)
    }

    /// Moves whose commit was sent but never confirmed (see ``UncertainMove``); a daemon reports them at start.
    public func uncertainMoves() -> [UncertainMove] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: outgoingDirectory)) ?? []
        return names.sorted().compactMap { name in
            let parts = name.split(separator: ".")
            guard parts.count >= 3, parts.last.map(String.init) == Self.fileExtension else { return nil }
            return UncertainMove(vm: parts.dropLast(2).joined(separator: "."), migrationID: String(parts[parts.count - 2]),
                                 path: "\(outgoingDirectory)/\(name)")
        }
    }
}
