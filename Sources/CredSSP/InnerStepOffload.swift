import Dispatch

/// Runs the inner authenticator's ``CredSSPInnerAuthenticator/step(_:)`` on a thread made for blocking calls.
///
/// A step may wait for a KDC (Kerberos service ticket, proxy credentials). The CredSSP actors are default actors,
/// so their code runs wherever the calling task prefers — a NIO event loop under `withTaskExecutorPreference`, or
/// every event loop when NIO is installed as the global executor. The step therefore goes to this queue and the
/// actor awaits it: no event loop thread and no cooperative-pool thread ever blocks on the KDC.
enum InnerStepOffload {
    /// Creates threads as needed (a concurrent queue on an overcommitting root queue).
    private static let queue = DispatchQueue(label: "MigrationAuth.CredSSP.innerStep", attributes: .concurrent)

    /// The authenticator crosses to the queue and back; the owning actor makes no other call on it meanwhile
    /// (its `busy` flag refuses re-entrant steps), so one thread uses it at a time.
    struct Handoff: @unchecked Sendable {
        let inner: any CredSSPInnerAuthenticator
    }

    static func step(_ handoff: Handoff, _ token: [UInt8]?) async throws -> [UInt8]? {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try handoff.inner.step(token) })
            }
        }
    }
}
