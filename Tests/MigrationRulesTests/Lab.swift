import Directory
import Hosts
import MigrationRules
import Testing
import WindowsStatus

/// Shared helpers: the seed's lab and the exact text of its error.
enum Lab {
    static func seedMessage(_ host: String) -> String {
        "Virtual machine migration operation failed at migration Source.\nFailed to establish a connection with host \(host): No credentials are available in the security package (0x8009030E)."
    }

    static func move(_ vm: String = "VM1", from: String = "TestServer01", to: String = "TestServer02",
                     user: String = "alice", startedFrom: String? = nil, kind: MoveKind = .live,
                     session: SignOnKind? = nil) -> MoveRequest {
        MoveRequest(vm: vm, from: from, to: to, kind: kind, user: user, startedFrom: startedFrom, session: session)
    }

    /// The lab with Kerberos on TestServer01 and TestServer02 and alice on ADMIN-WS01.
    static func kerberosLab() throws -> World {
        var w = World.contosoLab()
        try w.apply(.setAuthenticationType(host: "TestServer01", type: .kerberos))
        try w.apply(.setAuthenticationType(host: "TestServer02", type: .kerberos))
        try w.apply(.signOn(user: "alice", host: "ADMIN-WS01", kind: .console))
        return w
    }

    static let migrationTo02 = ["Microsoft Virtual System Migration Service/TestServer02.contoso.com",
                                "Microsoft Virtual System Migration Service/TestServer02"]

    /// Kerberos lab with TestServer01 delegating to TestServer02, replicated and in effect.
    static func delegatedLab(services: [String] = migrationTo02) throws -> World {
        var w = try kerberosLab()
        try w.apply(.addDelegation(computer: "TestServer01", services: services, by: "alice", dc: "DC01"))
        try w.apply(.replicateAll)
        try w.apply(.purgeTickets(host: "TestServer01"))
        return w
    }

    static func failure(_ outcome: MoveOutcome, sourceLocation: SourceLocation = #_sourceLocation) -> MigrationFailure? {
        let f = outcome.failure
        #expect(f != nil, "expected a failure, got \(outcome)", sourceLocation: sourceLocation)
        return f
    }
}
