import Testing
import WindowsStatus

@Suite struct WindowsStatusTests {
    @Test func seedErrorReadsAsHyperVPrintsIt() {
        #expect(WindowsStatus.noCredentials.windowsMessage
                == "No credentials are available in the security package (0x8009030E).")
        #expect(WindowsStatus.noCredentials.hex == "0x8009030E")
    }

    @Test func hexIsZeroPadded() {
        #expect(WindowsStatus(code: 0x5, symbol: "X", text: "t").hex == "0x00000005")
    }

    @Test func parseAcceptsHexSymbolAndDecimal() {
        #expect(WindowsStatus.parse("0x8009030E") == .noCredentials)
        #expect(WindowsStatus.parse("8009030e") == .noCredentials)
        #expect(WindowsStatus.parse("sec_e_no_credentials") == .noCredentials)
        #expect(WindowsStatus.parse("2148074254") == .noCredentials)
        #expect(WindowsStatus.parse("not a code") == nil)
    }

    @Test func tableHasUniqueCodes() {
        #expect(Set(WindowsStatus.all.map(\.code)).count == WindowsStatus.all.count)
        for status in WindowsStatus.all { #expect(status.isFailure) }
    }
}
