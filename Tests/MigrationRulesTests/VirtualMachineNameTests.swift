import Hosts
import MigrationRules
import Testing
import WindowsStatus

/// VM names become file names on the real path, so unsafe ones are refused up front.
@Suite struct VirtualMachineNameTests {
    @Test(arguments: ["VM9", "Web Server (prod)", "db-01.contoso", String(repeating: "v", count: 100), "Ünïcödé"])
    func accepted(_ name: String) throws {
        #expect(VirtualMachine.nameProblem(name) == nil)
        var w = World.contosoLab()
        try w.apply(.createVM(host: "TestServer01", name: name))
        #expect(w.host("TestServer01")?.virtualMachines[name.lowercased()] != nil)
    }

    @Test(arguments: ["", ".", "..", "../etc/passwd", "a/b", "a\\b", "C:", "x*", "what?", "\"q\"", "<a>", "a|b",
                      " lead", "trail ", "tab\there", "nul\u{0}", String(repeating: "v", count: 101)])
    func refused(_ name: String) {
        #expect(VirtualMachine.nameProblem(name) != nil)
        var w = World.contosoLab()
        let before = w
        do {
            try w.apply(.createVM(host: "TestServer01", name: name))
            Issue.record("'\(name)' was accepted")
        } catch {
            #expect(error.status == .invalidArgument, "\(error)")
        }
        #expect(w == before, "a refused name changes nothing")
    }
}
