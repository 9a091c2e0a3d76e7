@testable import CredSSP
import Synchronization
import Testing

/// How sessions get a thread from a set (``CredSSPThreadSet``), with a thread maker the test controls: the system
/// refusing a thread is a maker that returns nil.
@Suite struct CredSSPThreadSetTests {
    /// Makes real session threads (named apart from the shared set's, which other suites count) while `allowed` is
    /// above 0 (each takes one), then refuses.
    final class Maker: Sendable {
        let allowed: Mutex<Int>
        init(allowing count: Int) { allowed = Mutex(count) }
        func make() -> CredSSPSessionThread? {
            guard allowed.withLock({ n in defer { n -= 1 }; return n > 0 }) else { return nil }
            return CredSSPSessionThread.started(name: "credssp-test")
        }
    }

    @Test("no thread and none can be made: a session is refused at once with SEC_E_INSUFFICIENT_MEMORY")
    func refusedWithoutThreads() {
        let maker = Maker(allowing: 0)
        let set = CredSSPThreadSet(size: 4) { maker.make() }
        #expect(throws: CredSSPError.self) { _ = try set.assign() }
        do {
            _ = try set.assign()
        } catch {
            #expect(error.status == .insufficientMemory)
            #expect(error.description.contains("thread limit"), "\(error)")
        }
        #expect(set.count == 0)
        #expect(set.startAll() == 0)
    }

    @Test("at the limit with a thread running, new sessions share it; released sessions free it for the next")
    func sharedAtTheLimit() throws {
        let maker = Maker(allowing: 1)
        let set = CredSSPThreadSet(size: 4) { maker.make() }
        let first = try set.assign()
        let second = try set.assign()  // a second thread is refused: shared
        #expect(first === second)
        #expect(set.count == 1)
        first.release()
        second.release()
        #expect(try set.assign() === first)
    }

    @Test("startAll starts the whole set once; sessions then spread over idle threads and start none")
    func startAllThenAssign() throws {
        let maker = Maker(allowing: 10)
        let set = CredSSPThreadSet(size: 3) { maker.make() }
        #expect(set.startAll() == 3)
        #expect(set.startAll() == 3)
        let sessions = try (0..<6).map { _ in try set.assign() }
        #expect(Set(sessions.map { ObjectIdentifier($0) }).count == 3)
        #expect(set.count == 3)
        #expect(maker.allowed.withLock { $0 } == 7)
    }
}
