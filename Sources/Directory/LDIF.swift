@_exported import LDIFFormat
import WindowsStatus

/// Reads and writes LDIF (RFC 2849) as `ldifde -f`, `ldapsearch -LLL` and Samba's `ldbsearch` produce it (the
/// syntax is `LDIFFormat`'s): AD's binary `objectSid`/`objectGUID` are read in their text forms, DNs are checked,
/// and errors are ``DirectoryError``s (ERROR_INVALID_PARAMETER) naming the file, line and attribute.
public enum LDIF {
    /// How Directory reads LDIF: SIDs and GUIDs as text, DNs parsed.
    static let options = LDIFReader.Options(
        binaryValue: { key, bytes in
            switch key {
            case "objectsid": BinaryValues.sid(bytes)
            case "objectguid": BinaryValues.guid(bytes)
            default: nil
            }
        },
        isValidDN: { DistinguishedName($0) != nil })

    /// Parses content records. Errors name `file`, the line and the attribute.
    public static func parse(_ text: String, file: String = "<ldif>") throws(DirectoryError) -> [LDIFRecord] {
        try read(text, file: file).records
    }

    /// Parses content records and notes what was skipped (search references, result summaries).
    public static func read(_ text: String, file: String = "<ldif>") throws(DirectoryError) -> LDIFDocument {
        do {
            return try LDIFReader.read(text, file: file, options: options)
        } catch {
            throw DirectoryError(status: .invalidArgument, message: error.message, file: error.file, line: error.line,
                                 attribute: error.attribute)
        }
    }

    /// Writes records with `version: 1`, base64 where RFC 2849 requires it, lines folded at 76 columns.
    public static func write(_ records: [LDIFRecord], header: String? = nil) -> String {
        LDIFWriter.write(records, header: header)
    }
}
