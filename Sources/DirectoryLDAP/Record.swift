import Directory

/// The Directory module's record (OpenLDAP's `ldif.h`, visible through CLDAP, has a C
/// `LDIFRecord` too; this file does not import CLDAP, so the name is unambiguous here).
public typealias DirectoryRecord = LDIFRecord
