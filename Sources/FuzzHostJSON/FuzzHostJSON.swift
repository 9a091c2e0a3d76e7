// libFuzzer target (docs/fuzzing.md): a daemon's host configuration (JSON) through its decoder and
// validation, and a refused document through the error locator (line, column, field) that names the problem.
// Built only with MIGAUTH_FUZZ=1 and `-sanitize=fuzzer` (.ci/fuzz-smoke).
import Foundation
import MigrationService
import MigrationVocabulary

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHostJSON(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let start else { return 0 }
    let data = Data(bytes: start, count: count)
    do {
        let configuration = try JSONDecoder().decode(HostConfiguration.self, from: data)
        try? configuration.validate()
    } catch {
        _ = JSONDecodeProblem(error, in: data).message(file: "host.json")
    }
    return 0
}
