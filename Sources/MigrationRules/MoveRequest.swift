import Foundation
import Hosts

/// What a move carries: the running VM only (storage stays where it is), its storage only, or both
/// (a "shared nothing" live migration).
public enum MoveKind: String, Sendable, Hashable, Codable, CaseIterable {
    /// `Move-VM` with the VM's storage on shared storage: needs the migration service.
    case live
    /// `Move-VMStorage` to the destination's share: needs `cifs/<destination>` under Kerberos.
    case storage
    /// `Move-VM -IncludeStorage`: needs both services.
    case both

    public init?(parsing text: String) {
        switch text.lowercased() {
        case "live", "vm", "live-vm", "vm-only": self = .live
        case "storage", "storage-only": self = .storage
        case "both", "vm-and-storage", "shared-nothing", "include-storage": self = .both
        default: return nil
        }
    }

    public var movesVM: Bool { self != .storage }
    public var needsCIFS: Bool { self != .live }
}

/// A move as the user starts it: `Move-VM VM1 -DestinationHost TestServer02` run by `user`
/// in a session on `startedFrom` (the source when nil).
public struct MoveRequest: Sendable, Hashable, Codable {
    public var vm: String
    public var source: String
    /// The destination as the user typed it (short name or FQDN).
    public var destination: String
    public var kind: MoveKind
    /// `CONTOSO\alice`, `alice@contoso.com` or `alice`.
    public var user: String
    /// The host where the user runs the command; nil means the source.
    public var startedFrom: String?
    /// Which of the user's sessions on `startedFrom` runs it; nil picks the one with reusable credentials.
    public var session: SignOnKind?
    /// The destination address to connect to; nil picks its preferred migration network address.
    public var destinationAddress: String?

    public init(vm: String, from source: String, to destination: String, kind: MoveKind = .live, user: String,
                startedFrom: String? = nil, session: SignOnKind? = nil, destinationAddress: String? = nil) {
        self.vm = vm
        self.source = source
        self.destination = destination
        self.kind = kind
        self.user = user
        self.startedFrom = startedFrom
        self.session = session
        self.destinationAddress = destinationAddress
    }
}
