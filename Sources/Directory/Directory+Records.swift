extension Directory {
    /// Builds a directory from records (a DN and its values) however they were read: the LDIF
    /// importer's builder, shared by `importLDIF` and the live LDAP reader (`DirectoryLDAP`), so
    /// both give the same directory for the same entries. `source` names them in errors.
    public static func importRecords(_ records: [LDIFRecord], source: String) throws(DirectoryError) -> Directory {
        try LDIFImporter(records: records, file: source).build()
    }
}
