// libFuzzer target (docs/fuzzing.md): an environment file (`migauth env`, JSON) through its decoder, a
// refused document through the error locator; a decoded environment, encoded again, must decode again.
// Built only with MIGAUTH_FUZZ=1 and `-sanitize=fuzzer` (.ci/fuzz-smoke).
import Foundation
import MigrationVocabulary
@testable import Scenario

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEnvironmentJSON(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let start else { return 0 }
    let data = Data(bytes: start, count: count)
    let stored: StoredEnvironment
    do {
        stored = try JSONDecoder().decode(StoredEnvironment.self, from: data)
    } catch {
        _ = JSONDecodeProblem(error, in: data).message(file: "env.json")
        return 0
    }
    do {
        let again = try JSONEncoder().encode(stored)
        _ = try JSONDecoder().decode(StoredEnvironment.self, from: again)
    } catch {
        preconditionFailure("a decoded environment does not encode and decode again: \(error)")
    }
    return 0
}
