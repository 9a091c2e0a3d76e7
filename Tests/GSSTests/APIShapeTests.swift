import GSS
import TestSupport
import Testing

/// The value types of the GSS API: errors equal by code, lifetimes as `Duration`, the default
/// QOP as nil. No KDC needed.
@Suite("GSS API values")
struct APIShapeTests {
    @Test("GSSError equality and hashing go by operation, major and minor, not by texts or peer token")
    func errorEqualityByCode() {
        let a = GSSError(operation: .initSecContext, major: .failure, minor: 2_529_638_925,
                         majorMessages: ["Unspecified GSS failure"], minorMessages: ["KDC can't fulfill requested option"])
        let sameCode = GSSError(operation: .initSecContext, major: .failure, minor: 2_529_638_925,
                                majorMessages: [], minorMessages: ["another text"])
        let otherMinor = GSSError(operation: .initSecContext, major: .failure, minor: 2_529_638_919,
                                  majorMessages: [], minorMessages: [])
        let otherOperation = GSSError(operation: .acceptSecContext, major: .failure, minor: 2_529_638_925,
                                      majorMessages: [], minorMessages: [])
        let otherMajor = GSSError(operation: .initSecContext, major: .noCredentials, minor: 2_529_638_925,
                                  majorMessages: [], minorMessages: [])
        #expect(a == sameCode)
        #expect(a.hashValue == sameCode.hashValue)
        #expect(a != otherMinor)
        #expect(a != otherOperation)
        #expect(a != otherMajor)
        #expect(Set([a, sameCode, otherMinor]).count == 2)
        #expect(a.code == GSSError.Code(operation: .initSecContext, major: .failure, minor: 0x96C7_3A0D))
        #expect(a.code.description == "gss_init_sec_context GSS_S_FAILURE minor 0x96C73A0D")
    }

    @Test("lifetimes cross to MIT as whole seconds without trapping", arguments: [
        (Duration?.none, UInt32.max),
        (Duration.seconds(300), 300),
        (Duration.milliseconds(1500), 2),
        (Duration.milliseconds(1), 1),
        (Duration.zero, 1),
        (Duration.seconds(-5), 1),
        (Duration.seconds(Int64.max), UInt32.max - 1),
    ] as [(Duration?, UInt32)])
    func lifetimeRequest(lifetime: Duration?, seconds: UInt32) {
        #expect(GSSLifetime.request(lifetime) == seconds)
    }

    @Test("a context with no requested lifetime asks for MIT's default; indefinite reads back as nil")
    func lifetimeDefaultsAndReports() {
        #expect(GSSLifetime.contextRequest(nil) == 0)
        #expect(GSSLifetime.contextRequest(.seconds(60)) == 60)
        #expect(GSSLifetime.reported(UInt32.max) == nil)
        #expect(GSSLifetime.reported(0) == .zero)
        #expect(GSSLifetime.reported(36_000) == .seconds(36_000))
    }

    @Test("the default QOP is nil in Swift and 0 at the C boundary")
    func qopDefault() {
        #expect(GSSQOP.reported(0) == nil)
        #expect(GSSQOP.reported(7) == 7)
        #expect(GSSQOP.default == 0)
    }

    @Test("the in-memory establishment loop gives up with GSS_S_FAILURE after its rounds, without a KDC")
    func establishmentGivesUp() throws {
        var initiator = GSSInitiatorContext(target: try GSSName(service: "host", host: "nowhere.test"))
        var acceptor = GSSAcceptorContext()
        let error = gssError { () throws(GSSError) in
            try InMemoryEstablishment.establish(&initiator, &acceptor, maximumRounds: 0)
        }
        #expect(error?.major == .failure)
        #expect(error?.operation == .initSecContext)
        #expect(error?.majorMessages.first?.contains("did not finish") == true)
        #expect(!initiator.isComplete && !acceptor.isComplete)
    }

    @Test("an async call from a task cancelled before it started fails with a GSSError and makes no call")
    func cancelledBeforeStart() async throws {
        let name = try GSSName(principal: "nobody@NOWHERE.TEST")
        let task = Task { () async throws -> GSSCredential in
            withUnsafeCurrentTask { $0?.cancel() }
            return try await GSSCredential.acquire(name: name, password: "unused")
        }
        let outcome: GSSError?
        switch await task.result {
        case .success: outcome = nil
        case .failure(let error): outcome = error as? GSSError
        }
        #expect(outcome?.operation == .acquireCredentialWithPassword)
        #expect(outcome?.major == .failure)
        #expect(outcome?.majorMessages.first?.contains("cancelled before the call started") == true,
                "\(String(describing: outcome))")
    }
}
