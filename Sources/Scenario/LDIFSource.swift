import Directory
import Foundation

/// Reads an LDIF file into a `Directory` through the Directory module's importer.
enum LDIFSource {
    /// Errors in the LDIF name the LDIF file, its line and attribute; a missing file names `at`.
    static func load(path: String, at: SourceLocation) throws(ScenarioError) -> Directory {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw at.error("cannot read LDIF file \(path): \(error.localizedDescription)")
        }
        do {
            return try Directory.importLDIF(text, file: path)
        } catch {
            throw ScenarioError(file: error.file ?? path, line: error.line, field: error.attribute,
                                message: "\(error.message) [\(error.status.symbol) \(error.status.hex)]")
        }
    }
}
