// libFuzzer target (docs/fuzzing.md): LDIF from `ldifde`/`ldapsearch`/`ldbsearch` (or anyone) through the
// parser and the importer; an imported directory, exported again, must import again.
// Built only with MIGAUTH_FUZZ=1 and `-sanitize=fuzzer` (.ci/fuzz-smoke).
import Directory

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLDIF(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let start else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: start, count: count), as: UTF8.self)
    guard let imported = try? Directory.importLDIFWithNotes(text, file: "fuzz.ldif") else { return 0 }
    let exported = imported.directory.exportLDIF()
    do {
        _ = try Directory.importLDIF(exported, file: "exported.ldif")
    } catch {
        preconditionFailure("an exported directory does not import again: \(error)\n\(exported)")
    }
    return 0
}
