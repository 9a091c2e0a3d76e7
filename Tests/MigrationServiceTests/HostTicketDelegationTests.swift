import GSS
@testable import MigrationService
import Testing
import WindowsStatus

@Suite("Rule A3 at the source: the KDC's delegation answers last as long as the host's ticket (no KDC)")
struct HostTicketDelegationTests {
    static let refusal = MigrationServiceError.connection(.authentication, .noCredentials, destination: "hostb.test",
                                                          detail: "KDC can't fulfill requested option",
                                                          gss: Self.gss("KDC can't fulfill requested option"))

    static func ticket(_ end: Double, modified: Int64 = 7) -> HostTicketDelegation.Ticket {
        HostTicketDelegation.Ticket(end: end, inode: 42, modified: modified)
    }

    static func gss(_ text: String) -> GSSError {
        GSSError(operation: .initSecContext, major: .failure, minor: 0, majorMessages: ["Unspecified GSS failure"], minorMessages: [text])
    }

    @Test("a refusal is given again for the same user, destination and ticket; a new ticket, another user or no ticket asks the KDC")
    func refusalsFollowTheTicket() throws {
        let answers = HostTicketDelegation()
        #expect(HostTicketDelegation.isDelegationRefusal(Self.refusal))
        answers.record(.refused(Self.refusal), user: "alice@TEST", destination: "HostB.test", ticketEnd: Self.ticket(1_000))
        guard case .refused(let kept)? = answers.answer(user: "alice@TEST", destination: "hostb.test", ticketEnd: Self.ticket(1_000)) else {
            Issue.record("the refusal was not kept")
            return
        }
        #expect(kept.status == .noCredentials)
        // The same ticket read a second later (MIT's whole seconds): still the same ticket.
        #expect(answers.answer(user: "alice@TEST", destination: "hostb.test", ticketEnd: Self.ticket(1_001)) != nil)
        #expect(answers.answer(user: "bob@TEST", destination: "hostb.test", ticketEnd: Self.ticket(1_000)) == nil)
        #expect(answers.answer(user: "alice@TEST", destination: "hostc.test", ticketEnd: Self.ticket(1_000)) == nil)
        // A new ticket (purge, restart, expiry) forgets everything, also when the old one comes back.
        #expect(answers.answer(user: "alice@TEST", destination: "hostb.test", ticketEnd: Self.ticket(1_010)) == nil)
        #expect(answers.answer(user: "alice@TEST", destination: "hostb.test", ticketEnd: Self.ticket(1_000)) == nil)
        // The same end but another version of the ccache file (a new ticket written in the same second).
        answers.record(.refused(Self.refusal), user: "alice@TEST", destination: "hostb.test", ticketEnd: Self.ticket(2_000))
        #expect(answers.answer(user: "alice@TEST", destination: "hostb.test", ticketEnd: Self.ticket(2_000)) != nil)
        #expect(answers.answer(user: "alice@TEST", destination: "hostb.test", ticketEnd: Self.ticket(2_000, modified: 8)) == nil)
        // No ticket in the ccache: nothing is remembered, nothing kept.
        answers.record(.refused(Self.refusal), user: "alice@TEST", destination: "hostb.test", ticketEnd: nil)
        #expect(answers.answer(user: "alice@TEST", destination: "hostb.test", ticketEnd: nil) == nil)
    }

    @Test("only the KDC refusing delegation is kept: not P1, not a KDC that cannot be reached")
    func whatIsKept() {
        let unreachable = MigrationServiceError.connection(.authentication, .noAuthenticatingAuthority, destination: "hostb.test",
                                                           detail: "no KDC", gss: Self.gss("Cannot contact any KDC"))
        #expect(!HostTicketDelegation.isDelegationRefusal(unreachable))
        let denied = MigrationServiceError(kind: .authorization, status: .accessDenied, stage: .destination, message: "denied")
        #expect(!HostTicketDelegation.isDelegationRefusal(denied))
    }
}
