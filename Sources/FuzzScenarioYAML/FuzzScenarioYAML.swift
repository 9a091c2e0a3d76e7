// libFuzzer target (docs/fuzzing.md): a scenario file (YAML) through Yams, the scenario parser and, when it
// parses, the simulated run of its steps. Relative `ldif:` paths resolve under a directory that does not exist.
// Built only with MIGAUTH_FUZZ=1 and `-sanitize=fuzzer` (.ci/fuzz-smoke).
import Scenario

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzScenarioYAML(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let start else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: start, count: count), as: UTF8.self)
    guard let scenario = try? Scenario(yaml: text, file: "fuzz.yaml", baseDirectory: "/nonexistent-migauth-fuzz") else {
        return 0
    }
    _ = scenario.run()
    return 0
}
