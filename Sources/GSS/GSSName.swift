import CGSSAPI

/// A GSSAPI name (`gss_name_t`): a host-based service, a Kerberos principal, or an exported name.
///
/// Immutable once imported, hence `Sendable`; the handle is released when the value goes away.
public final class GSSName: @unchecked Sendable, CustomStringConvertible {
    let handle: gss_name_t

    /// How the text of a name is to be read.
    public enum Kind: Sendable {
        /// `service@host` (`GSS_C_NT_HOSTBASED_SERVICE`), e.g. `host@hosta.test`.
        case hostBasedService
        /// A Kerberos principal (`GSS_KRB5_NT_PRINCIPAL_NAME`), e.g.
        /// `Microsoft Virtual System Migration Service/hostb.test@REALM`; spaces are literal.
        case kerberosPrincipal
        /// A user name (`GSS_C_NT_USER_NAME`).
        case user
    }

    init(owning handle: gss_name_t) { self.handle = handle }

    /// Imports `text` as a name of the given kind.
    public init(_ text: String, kind: Kind) throws(GSSError) {
        let type: gss_OID = switch kind {
        case .hostBasedService: mig_nt_hostbased_service()
        case .kerberosPrincipal: mig_nt_krb5_principal()
        case .user: mig_nt_user_name()
        }
        handle = try Self.importName(Array(text.utf8), type: type)
    }

    /// `service@host`, e.g. `GSSName(service: "host", host: "hosta.test")`.
    public convenience init(service: String, host: String) throws(GSSError) {
        try self.init("\(service)@\(host)", kind: .hostBasedService)
    }

    /// A Kerberos principal, e.g. `user@REALM` or `service/host@REALM`.
    public convenience init(principal: String) throws(GSSError) {
        try self.init(principal, kind: .kerberosPrincipal)
    }

    /// Imports an exported mechanism name (from ``export()``).
    public init(exported: [UInt8]) throws(GSSError) {
        handle = try Self.importName(exported, type: mig_nt_export_name())
    }

    private static func importName(_ bytes: [UInt8], type: gss_OID) throws(GSSError) -> gss_name_t {
        var minor: OM_uint32 = 0
        var name: gss_name_t? = nil
        var copy = bytes
        let major = copy.withUnsafeMutableBytes { raw in
            var buffer = gss_buffer_desc(length: raw.count, value: raw.baseAddress)
            return gss_import_name(&minor, &buffer, type, &name)
        }
        guard major == 0, let name else { throw GSSError(.importName, major: major, minor: minor) }
        return name
    }

    deinit {
        var minor: OM_uint32 = 0
        var h: gss_name_t? = handle
        gss_release_name(&minor, &h)
    }

    /// The name as text (`gss_display_name`), e.g. `host@hosta.test` or `user@REALM`.
    public var description: String { (try? displayed().text) ?? "<undisplayable name>" }

    /// The text and the name type's OID bytes.
    public func displayed() throws(GSSError) -> GSSDisplayedName {
        var minor: OM_uint32 = 0
        var buffer = gss_buffer_desc()
        var type: gss_OID? = nil
        let major = gss_display_name(&minor, handle, &buffer, &type)
        guard major == 0 else { throw GSSError(.displayName, major: major, minor: minor) }
        defer { gss_release_buffer(&minor, &buffer) }
        return GSSDisplayedName(text: buffer.string, type: GSSMechanism(type).oid)
    }

    /// True when both names denote the same entity (`gss_compare_name`).
    public func isSame(as other: GSSName) throws(GSSError) -> Bool {
        var minor: OM_uint32 = 0
        var equal: Int32 = 0
        let major = gss_compare_name(&minor, handle, other.handle, &equal)
        guard major == 0 else { throw GSSError(.compareName, major: major, minor: minor) }
        return equal != 0
    }

    /// The mechanism name for `mechanism` (`gss_canonicalize_name`): a host-based service becomes
    /// `service/host@REALM`.
    public func canonicalized(for mechanism: GSSMechanism = .kerberos) throws(GSSError) -> GSSName {
        var minor: OM_uint32 = 0
        var out: gss_name_t? = nil
        let major = mechanism.withOID { gss_canonicalize_name(&minor, handle, $0, &out) }
        guard major == 0, let out else { throw GSSError(.canonicalizeName, major: major, minor: minor) }
        return GSSName(owning: out)
    }

    /// The exported form (`gss_export_name`) of a mechanism name, suitable for byte comparison
    /// and access-control lists. Canonicalize first if the name is not a mechanism name.
    public func export() throws(GSSError) -> [UInt8] {
        var minor: OM_uint32 = 0
        var buffer = gss_buffer_desc()
        let major = gss_export_name(&minor, handle, &buffer)
        guard major == 0 else { throw GSSError(.exportName, major: major, minor: minor) }
        defer { gss_release_buffer(&minor, &buffer) }
        return buffer.bytes
    }
}
