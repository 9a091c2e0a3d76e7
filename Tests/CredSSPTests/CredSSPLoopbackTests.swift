@testable import CredSSP
import Foundation
import NIOCore
import NIOPosix
import Testing

/// Swift client and Swift server over real loopback TCP through `run(inbound:outbound:)`, one 4-byte big-endian
/// length prefix per token.
@Suite struct CredSSPLoopbackTests {
    @Test(arguments: [3, 6]) func credentialsCrossRealTCP(version: Int) async throws {
        let (client, server) = try CredSSPExchangeTests.pair(clientPolicy: CredSSPPolicy(minimumVersion: 2, version: version),
                                                            serverPolicy: CredSSPPolicy(minimumVersion: 2))
        let (listener, port) = try await LoopbackTransport.listen()
        async let served = LoopbackTransport.serve(server, on: listener)
        let sent = try await LoopbackTransport.runClient(client, port: port)
        #expect(sent.failure == nil)
        let credentials = try #require(try await served?.get())
        #expect(credentials.domain == "CONTOSO")
        #expect(credentials.user == "alice")
        #expect(credentials.password == "Corr3ct-horse")
    }

    @Test func wrongPasswordReachesTheClientAsErrorCode() async throws {
        let (client, server) = try CredSSPExchangeTests.pair(flow: .threeLeg, password: "wrong")
        let (listener, port) = try await LoopbackTransport.listen()
        async let served = LoopbackTransport.serve(server, on: listener)
        let sent = try await LoopbackTransport.runClient(client, port: port)
        #expect(sent.failure?.kind == .peerReportedError)
        #expect(sent.failure?.status == .logonDenied)
        #expect(try await served?.failure?.status == .logonDenied)
    }

    @Test func serverSeesAnEarlyCloseAsATransportError() async throws {
        let (_, server) = try CredSSPExchangeTests.pair()
        let (listener, port) = try await LoopbackTransport.listen()
        async let served = LoopbackTransport.serve(server, on: listener)
        let connection = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { LoopbackTransport.framed($0) }
        try await connection.executeThenClose { _, _ in }
        let failure = try await served?.failure
        #expect(failure?.kind == .transport)
        #expect(failure?.status == .connectionReset)
    }

    /// The inner step never runs on a NIO event loop thread, even when both sides' tasks prefer an event loop as
    /// their executor (where a default actor's code would otherwise run): it runs on the actor's session thread.
    @available(macOS 15, *)
    @Test(arguments: [TestDoubleAuthenticator.Flow.mutual, .threeLeg])
    func innerStepsRunOffTheEventLoop(flow: TestDoubleAuthenticator.Flow) async throws {
        let certs = try TestCertificates.get()
        let clientInner = LoopProbeAuthenticator(TestDoubleAuthenticator(flow: flow, role: .client(user: "alice", password: "Corr3ct-horse")))
        let serverInner = LoopProbeAuthenticator(TestDoubleAuthenticator(flow: flow, role: .server(users: CredSSPExchangeTests.users)))
        let probes = [clientInner.probe, serverInner.probe]
        let client = try CredSSPClient(credentials: CredSSPCredentials(domain: "CONTOSO", user: "alice", password: "Corr3ct-horse"),
                                       inner: clientInner, verification: .insecureAcceptAny)
        let server = try CredSSPServer(certificateChain: certs.selfSignedChain, privateKey: certs.selfSignedKey,
                                       inner: serverInner)
        let loops = MultiThreadedEventLoopGroup.singleton
        let (listener, port) = try await LoopbackTransport.listen()

        // The set-up under test is effective: a default actor's code runs on the preferred event loop.
        let onLoop = await withTaskExecutorPreference(EventLoopTaskExecutor(loops.next())) { await LoopProbeActor().isOnEventLoop() }
        #expect(onLoop)

        async let served = withTaskExecutorPreference(EventLoopTaskExecutor(loops.next())) {
            try await LoopbackTransport.serve(server, on: listener)
        }
        let sent = try await withTaskExecutorPreference(EventLoopTaskExecutor(loops.next())) {
            try await LoopbackTransport.runClient(client, port: port)
        }
        #expect(sent.failure == nil)
        #expect(try await served?.get().user == "alice")
        for probe in probes {
            #expect(probe.steps > 0)
            #expect(probe.stepsOnEventLoop == 0)
            #expect(probe.stepsOnSessionThread == probe.steps)  // not on the cooperative pool either
        }
    }
}

/// A task executor that runs jobs on a NIO event loop (as a server that hops onto its channel's loop would).
@available(macOS 15, *)
final class EventLoopTaskExecutor: TaskExecutor {
    let loop: any EventLoop
    init(_ loop: any EventLoop) { self.loop = loop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        loop.execute { job.runSynchronously(on: executor) }
    }
}

actor LoopProbeActor {
    func isOnEventLoop() -> Bool { MultiThreadedEventLoopGroup.currentEventLoop != nil }
}

/// Counts inner steps and how many of them ran on an event loop thread.
final class LoopProbeAuthenticator: CredSSPInnerAuthenticator {
    final class Probe: @unchecked Sendable {
        private let lock = NSLock()
        private var counts = (steps: 0, onLoop: 0, onSessionThread: 0)
        func record(onLoop: Bool, onSessionThread: Bool) {
            lock.withLock {
                counts.steps += 1
                if onLoop { counts.onLoop += 1 }
                if onSessionThread { counts.onSessionThread += 1 }
            }
        }
        var steps: Int { lock.withLock { counts.steps } }
        var stepsOnEventLoop: Int { lock.withLock { counts.onLoop } }
        var stepsOnSessionThread: Int { lock.withLock { counts.onSessionThread } }
    }

    let probe = Probe()
    private let inner: TestDoubleAuthenticator

    init(_ inner: TestDoubleAuthenticator) { self.inner = inner }

    var isComplete: Bool { inner.isComplete }
    func wrap(_ message: [UInt8]) throws -> [UInt8] { try inner.wrap(message) }
    func unwrap(_ message: [UInt8]) throws -> [UInt8] { try inner.unwrap(message) }

    func step(_ token: [UInt8]?) throws -> [UInt8]? {
        probe.record(onLoop: MultiThreadedEventLoopGroup.currentEventLoop != nil,
                     onSessionThread: CredSSPSessionThread.isSessionThread)
        return try inner.step(token)
    }
}
