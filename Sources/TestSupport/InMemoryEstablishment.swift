import GSS

/// The one in-memory establishment loop of the tests and benchmarks: the initiator's token goes
/// straight to the acceptor and the reply straight back, until both sides are complete.
///
/// Throws the failing step's `GSSError`, or a `GSS_S_FAILURE` one when the exchange has not
/// finished after `maximumRounds` initiator steps (a mechanism that never completes).
package enum InMemoryEstablishment {
    /// Steps both contexts on the calling thread (each step may wait for the KDC: call it from a
    /// thread that may block, not from the cooperative pool).
    package static func establish(_ initiator: inout GSSInitiatorContext, _ acceptor: inout GSSAcceptorContext,
                                 maximumRounds: Int = 10) throws(GSSError) {
        var input: [UInt8]? = nil
        for _ in 0..<maximumRounds {
            let step = try initiator.step(input)
            input = nil
            if let token = step.token { input = try acceptor.step(token).token }
            if step.isComplete && acceptor.isComplete { return }
        }
        throw unfinished(maximumRounds)
    }

    /// The same loop with the `async` steps (GSS runs them off the cooperative pool).
    package static func establish(_ initiator: inout GSSInitiatorContext, _ acceptor: inout GSSAcceptorContext,
                                 maximumRounds: Int = 10) async throws(GSSError) {
        var input: [UInt8]? = nil
        for _ in 0..<maximumRounds {
            let step = try await initiator.step(input)
            input = nil
            if let token = step.token { input = try await acceptor.step(token).token }
            if step.isComplete && acceptor.isComplete { return }
        }
        throw unfinished(maximumRounds)
    }

    static func unfinished(_ rounds: Int) -> GSSError {
        GSSError(operation: .initSecContext, major: .failure, minor: 0,
                 majorMessages: ["Context establishment did not finish within \(rounds) rounds"], minorMessages: [])
    }
}
