import Directory
import Foundation

/// Reads an LDIF file into a `Directory` through the Directory module's importer.
enum LDIFSource {
    /// Errors in the LDIF name the LDIF file, its line and attribute, and — when the file is a
    /// scenario's `directory.ldif` — the scenario's line too; a missing file names `at`.
    static func load(path: String, at: SourceLocation) throws(ScenarioError) -> Directory {
        try loadWithNotes(path: path, at: at).directory
    }

    /// ``load(path:at:)`` and what the import skipped (search references, objects the model does not read).
    static func loadWithNotes(path: String, at: SourceLocation) throws(ScenarioError) -> DirectoryImport {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw at.error("cannot read LDIF file \(path): \(error.localizedDescription)")
        }
        do {
            return try Directory.importLDIFWithNotes(text, file: path)
        } catch {
            let from = at.file == path ? "" : " (the \(at.field.isEmpty ? "LDIF" : at.field) of scenario \(at))"
            throw ScenarioError(file: error.file ?? path, line: error.line, field: error.attribute,
                                message: "\(error.message) [\(error.status.symbol) \(error.status.hex)]\(from)")
        }
    }
}
