import Foundation
import GSS
import TestRealm

/// Principals for one test in the process-wide realm (``TestRealm/shared()``), with unique names.
enum GSSFixture {
    struct Service: Sendable {
        /// `service/host@REALM`.
        let principal: String
        /// `service@host` (host-based form).
        let hostBased: String
        let host: String
        /// `FILE:` keytab holding only this service's keys.
        let keytab: String

        func acceptorCredential(usage: GSSCredentialUsage = .accept,
                                mechanisms: [GSSMechanism] = [.kerberos]) throws(GSSError) -> GSSCredential {
            try GSSCredential.acquire(name: GSSName(principal: principal), usage: usage, mechanisms: mechanisms,
                                      store: GSSCredentialStore(keytab: keytab))
        }

        func targetName() throws(GSSError) -> GSSName { try GSSName(hostBased, kind: .hostBasedService) }
    }

    struct User: Sendable {
        let principal: String
        let password: String
        /// `FILE:` ccache with a forwardable TGT.
        let ccache: String

        func credential(mechanisms: [GSSMechanism] = [.kerberos]) throws(GSSError) -> GSSCredential {
            try GSSCredential.acquire(usage: .initiate, mechanisms: mechanisms, store: GSSCredentialStore(ccache: ccache))
        }
    }

    static func unique() -> String { String(UUID().uuidString.prefix(8)).lowercased() }

    static func realm() async throws -> TestRealm { try await TestRealm.shared() }

    /// A service principal with a random key, exported to its own keytab.
    static func service(_ service: String = "migtest", attributes: PrincipalAttributes = .none) async throws -> Service {
        let realm = try await realm()
        let host = "host-\(unique()).test"
        let principal = "\(service)/\(host)@\(realm.name)"
        try await realm.addPrincipal(principal, password: nil, attributes: attributes)
        let keytab = try await realm.exportKeytab([principal])
        return Service(principal: principal, hostBased: "\(service)@\(host)", host: host, keytab: "FILE:" + keytab)
    }

    /// A user with a password and a forwardable TGT in its own ccache.
    static func user(attributes: PrincipalAttributes = .none) async throws -> User {
        let realm = try await realm()
        let principal = "user-\(unique())@\(realm.name)"
        let password = "pw-\(unique())"
        try await realm.addPrincipal(principal, password: password, attributes: attributes)
        let ccache = try await realm.kinit(principal, password: password)
        return User(principal: principal, password: password, ccache: ccache)
    }
}

/// The establishment loop of an initiator over a frame channel.
func establish(_ context: inout GSSInitiatorContext, send: (([UInt8]) throws -> Void),
               receive: () throws -> [UInt8]) throws {
    var input: [UInt8]? = nil
    while true {
        let step = try context.step(input)
        if let token = step.token { try send(token) }
        if step.isComplete { return }
        input = try receive()
    }
}

/// The establishment loop of an acceptor over a frame channel.
func establish(_ context: inout GSSAcceptorContext, send: (([UInt8]) throws -> Void),
               receive: () throws -> [UInt8]) throws {
    while true {
        let step = try context.step(try receive())
        if let token = step.token { try send(token) }
        if step.isComplete { return }
    }
}

/// The error `body` throws, or nil when it succeeds.
func gssError(_ body: () throws(GSSError) -> Void) -> GSSError? {
    do { try body(); return nil } catch { return error }
}

/// Captures the outcome of async work, so a peer's error can be looked at first.
func asyncResult<T>(_ body: () async throws -> T) async -> Result<T, any Error> {
    do { return .success(try await body()) } catch { return .failure(error) }
}
