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

    @Test("a new context starts undecided, with the process default")
    func newContextDefaults() throws {
        let context = GSSAcceptorContext()
        #expect(context.protectionPath == .undecided)
        #expect(context.allowsFastProtection == GSSFastProtection.enabledByEnvironment)
    }
}
