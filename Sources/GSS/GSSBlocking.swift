import Dispatch

/// Runs GSSAPI calls that may wait for the KDC on threads of their own, off the cooperative
/// pool and off event loops; used by the `async` variants of blocking calls.
enum GSSBlocking {
    /// A queue that creates threads as needed (it targets an overcommitting root queue).
    static let queue = DispatchQueue(label: "MigrationAuth.GSS.blocking", attributes: .concurrent)

    static func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: body()) }
        }
    }
}

/// Moves a non-copyable value to the blocking queue and back. Filled until taken, exactly once.
final class GSSTransfer<Value: ~Copyable>: @unchecked Sendable {
    private var value: Value?

    init(_ value: consuming Value) { self.value = .some(value) }

    func withValue<R>(_ body: (inout Value) -> R) -> R {
        var taken = value.take()!  // invariant: filled until take()
        let result = body(&taken)
        value = .some(taken)
        return result
    }

    func take() -> Value { value.take()! }  // invariant: called once, after the work finished
}

extension GSSInitiatorContext {
    /// `step(_:)` on a thread of its own: the first step may wait for the KDC (service ticket).
    public mutating func step(_ input: [UInt8]? = nil) async throws(GSSError) -> GSSStep {
        let transfer = GSSTransfer(consume self)
        let result = await GSSBlocking.run {
            transfer.withValue { context in Result { () throws(GSSError) in try context.step(input) } }
        }
        self = transfer.take()
        return try result.get()
    }
}

extension GSSAcceptorContext {
    /// `step(_:)` on a thread of its own: an acceptor may contact the KDC (proxy credentials).
    public mutating func step(_ input: [UInt8]) async throws(GSSError) -> GSSStep {
        let transfer = GSSTransfer(consume self)
        let result = await GSSBlocking.run {
            transfer.withValue { context in Result { () throws(GSSError) in try context.step(input) } }
        }
        self = transfer.take()
        return try result.get()
    }
}

extension GSSCredential {
    /// `acquire(name:password:…)` on a thread of its own (an AS exchange with the KDC).
    public static func acquire(name: GSSName, password: String, usage: GSSCredentialUsage = .initiate,
                               mechanisms: [GSSMechanism] = [.kerberos],
                               lifetime: Duration? = nil) async throws(GSSError) -> GSSCredential {
        try await GSSBlocking.run {
            Result { () throws(GSSError) in
                try acquire(name: name, password: password, usage: usage, mechanisms: mechanisms, lifetime: lifetime)
            }
        }.get()
    }

    /// `impersonate(_:…)` on a thread of its own (an S4U2Self exchange with the KDC).
    public func impersonate(_ user: GSSName, usage: GSSCredentialUsage = .initiate,
                            mechanisms: [GSSMechanism] = [.kerberos],
                            lifetime: Duration? = nil) async throws(GSSError) -> GSSCredential {
        try await GSSBlocking.run {
            Result { () throws(GSSError) in
                try self.impersonate(user, usage: usage, mechanisms: mechanisms, lifetime: lifetime)
            }
        }.get()
    }
}
