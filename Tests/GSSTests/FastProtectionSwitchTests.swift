import Foundation
@testable import GSS
import Testing

/// The process-wide opt-out (`MIGAUTH_GSS_FAST_PROTECTION`) is read when a context is created;
/// setting it here would race with the other tests' contexts, so its parsing is tested directly.
@Suite("GSS fast path switch")
struct FastProtectionSwitchTests {
    @Test("MIGAUTH_GSS_FAST_PROTECTION: unset or other values keep the fast path; 0/off/false/no turn it off",
          arguments: [(nil, true), ("0", false), ("off", false), ("OFF", false), ("false", false), ("No", false),
                      ("1", true), ("on", true), ("yes", true), ("", true)] as [(String?, Bool)])
    func environmentValue(value: String?, enabled: Bool) {
        #expect(GSSFastProtection.enabled(byEnvironmentValue: value) == enabled)
        #expect(GSSFastProtection.environmentVariable == "MIGAUTH_GSS_FAST_PROTECTION")
    }

    @Test("a new context starts undecided, with the process default read from the environment")
    func newContextDefaults() throws {
        // The rule restated from the process environment, independently of GSSFastProtection.
        let value = ProcessInfo.processInfo.environment["MIGAUTH_GSS_FAST_PROTECTION"]?.lowercased()
        let expected = value.map { !["0", "off", "false", "no"].contains($0) } ?? true
        let acceptor = GSSAcceptorContext()
        #expect(acceptor.protectionPath == .undecided)
        #expect(acceptor.allowsFastProtection == expected)
        var turnedOff = GSSAcceptorContext()
        turnedOff.allowsFastProtection = false
        #expect(turnedOff.allowsFastProtection == false)
        #expect(turnedOff.protectionPath == .undecided)
    }
}
