import Directory
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
    public var vm: String { didSet { keys = Keys(self) } }
    public var source: String { didSet { keys = Keys(self) } }
    /// The destination as the user typed it (short name or FQDN).
    public var destination: String { didSet { keys = Keys(self) } }
    public var kind: MoveKind
    /// `CONTOSO\alice`, `alice@contoso.com` or `alice`.
    public var user: String { didSet { keys = Keys(self) } }
    /// The host where the user runs the command; nil means the source.
    public var startedFrom: String? { didSet { keys = Keys(self) } }
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
        self.keys = Keys.empty
        self.keys = Keys(self)
    }

    /// Lower-cased lookup keys, computed once so evaluation builds no strings.
    struct Keys: Sendable, Hashable {
        var vm: String
        var source: String
        var destination: String
        var origin: String
        /// The user's lower-cased name when given bare (no domain part), else nil.
        var bareUser: String?

        static let empty = Keys(vm: "", source: "", destination: "", origin: "", bareUser: nil)

        init(vm: String, source: String, destination: String, origin: String, bareUser: String?) {
            self.vm = vm
            self.source = source
            self.destination = destination
            self.origin = origin
            self.bareUser = bareUser
        }

        init(_ m: MoveRequest) {
            vm = ServiceTarget.asciiLower(m.vm)
            source = ServiceTarget.shortKey(m.source)
            destination = ServiceTarget.shortKey(m.destination)
            origin = m.startedFrom.map(ServiceTarget.shortKey) ?? source
            bareUser = m.user.utf8.contains { $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "@") } ? nil : ServiceTarget.asciiLower(m.user)
        }
    }

    private(set) var keys: Keys

    private enum CodingKeys: String, CodingKey {
        case vm, source, destination, kind, user, startedFrom, session, destinationAddress
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(vm: try c.decode(String.self, forKey: .vm), from: try c.decode(String.self, forKey: .source),
                  to: try c.decode(String.self, forKey: .destination), kind: try c.decode(MoveKind.self, forKey: .kind),
                  user: try c.decode(String.self, forKey: .user),
                  startedFrom: try c.decodeIfPresent(String.self, forKey: .startedFrom),
                  session: try c.decodeIfPresent(SignOnKind.self, forKey: .session),
                  destinationAddress: try c.decodeIfPresent(String.self, forKey: .destinationAddress))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(vm, forKey: .vm)
        try c.encode(source, forKey: .source)
        try c.encode(destination, forKey: .destination)
        try c.encode(kind, forKey: .kind)
        try c.encode(user, forKey: .user)
        try c.encodeIfPresent(startedFrom, forKey: .startedFrom)
        try c.encodeIfPresent(session, forKey: .session)
        try c.encodeIfPresent(destinationAddress, forKey: .destinationAddress)
    }
}
