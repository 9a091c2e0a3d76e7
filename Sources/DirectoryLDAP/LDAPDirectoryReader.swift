import CLDAP
import Directory
import Foundation
import NIOPosix

/// Reads a live Active Directory over LDAP into the same ``Directory`` an LDIF export of it gives.
///
/// Binds with SASL GSSAPI using the caller's Kerberos ticket (the credential cache `KRB5CCNAME`
/// names; no password anywhere), reads the domain naming context with the paged-results control
/// (RFC 2696), only the attributes the model uses, and the `crossRef` objects of the configuration
/// partition (NetBIOS names). The entries become ``DirectoryRecord``s and go through the LDIF
/// importer's own builder (``Directory/importRecords(_:source:)``), so the live and the exported
/// directory cannot differ in how they are read. libldap blocks: the async calls run it on NIO's blocking
/// thread pool, never on Swift's cooperative pool.
public struct LDAPDirectorySource: Sendable, Hashable {
    /// `ldap://dc01.contoso.com` (`ldaps://` works too). The SASL service name is
    /// `ldap/<host as written>`: libldap is told not to canonicalise it through DNS.
    public var uri: String
    /// The search base; nil: the DC's `defaultNamingContext`.
    public var base: String?
    /// Entries per page.
    public var pageSize: Int32
    /// Seconds to wait for the connection and each operation.
    public var timeout: Int

    public init(uri: String, base: String? = nil, pageSize: Int32 = 500, timeout: Int = 30) {
        self.uri = uri
        self.base = base
        self.pageSize = pageSize
        self.timeout = timeout
    }

    /// The attributes the model reads (see `Directory.importLDIF`).
    public static let attributes = [
        "objectClass", "sAMAccountName", "userAccountControl", "userPrincipalName", "dNSHostName", "operatingSystem",
        "servicePrincipalName", "msDS-AllowedToDelegateTo", "member", "trustPartner", "trustDirection",
    ]

    /// The objects the model holds: domains, accounts, groups, trusts.
    public static let filter = "(|(objectClass=domainDNS)(objectClass=computer)(objectClass=user)(objectClass=group)(objectClass=trustedDomain))"

    /// The entries, as records (the DN, the values; `line` is the entry's 1-based position).
    public func records() async throws(LDAPError) -> [DirectoryRecord] {
        let source = self
        let result: Result<[DirectoryRecord], LDAPError>
        do {
            // libldap blocks (connect, SASL bind, paged search): on NIO's blocking pool, off the cooperative pool.
            result = try await NIOThreadPool.singleton.runIfActive {
                Result { () throws(LDAPError) -> [DirectoryRecord] in try source.readBlocking() }
            }
        } catch {
            throw LDAPError(operation: "search of \(uri)", code: 0, text: "the blocking thread pool is not running",
                            diagnostic: "\(error)", fix: nil)
        }
        return try result.get()
    }

    /// The directory the DC holds, built like an LDIF import of the same entries.
    public func directory() async throws(LDAPError) -> Directory {
        let records = try await records()
        do {
            return try Directory.importRecords(records, source: uri).directory
        } catch {
            throw LDAPError(operation: "import of \(uri)", code: 0, text: "the entries do not form a directory",
                            diagnostic: "\(error)", fix: nil)
        }
    }

    /// ``directory()`` on the calling thread, which it blocks: for a thread of the caller's own
    /// (a command-line tool's main thread), never an event loop or the cooperative pool.
    public func directoryBlocking() throws(LDAPError) -> Directory {
        let records = try readBlocking()
        do {
            return try Directory.importRecords(records, source: uri).directory
        } catch {
            throw LDAPError(operation: "import of \(uri)", code: 0, text: "the entries do not form a directory",
                            diagnostic: "\(error)", fix: nil)
        }
    }

    /// Connects, binds and searches on the calling thread (blocking).
    public func readBlocking() throws(LDAPError) -> [DirectoryRecord] {
        let connection = try LDAPConnection(uri: uri, timeout: timeout)
        try connection.bindGSSAPI()
        let root = try connection.search(base: "", scope: .base, filter: "(objectClass=*)",
                                         attributes: ["defaultNamingContext", "configurationNamingContext"], pageSize: nil)
        let base = self.base ?? root.first?.first("defaultNamingContext")?.value
        guard let base, !base.isEmpty else {
            throw LDAPError(operation: "read RootDSE", code: 32, text: "No such object",
                            diagnostic: "the server names no defaultNamingContext; give the search base")
        }
        var records = try connection.search(base: base, scope: .subtree, filter: Self.filter,
                                            attributes: Self.attributes, pageSize: pageSize)
        if let config = root.first?.first("configurationNamingContext")?.value, !config.isEmpty {
            records += try connection.search(base: "CN=Partitions," + config, scope: .subtree,
                                             filter: "(&(objectClass=crossRef)(nETBIOSName=*))",
                                             attributes: ["objectClass", "nETBIOSName", "dnsRoot"], pageSize: pageSize)
        }
        for i in records.indices {
            records[i].line = i + 1
            for j in records[i].values.indices { records[i].values[j].line = i + 1 }
        }
        return records
    }
}

/// One libldap session handle, owned here and released in `deinit`. Used by one thread only.
final class LDAPConnection {
    private let ld: OpaquePointer
    let uri: String

    enum Scope: Int32 { case base = 0, subtree = 2 }

    init(uri: String, timeout: Int) throws(LDAPError) {
        var handle: OpaquePointer? = nil
        let rc = ldap_initialize(&handle, uri)
        guard rc == LDAP_SUCCESS, let handle else {
            throw LDAPError(operation: "connect to \(uri)", code: rc, text: LDAPConnection.text(rc))
        }
        ld = handle
        self.uri = uri
        var version: Int32 = 3
        var tv = timeval(tv_sec: timeout, tv_usec: 0)
        _ = ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version)
        _ = ldap_set_option(ld, LDAP_OPT_REFERRALS, migauth_ldap_opt_off())
        _ = ldap_set_option(ld, LDAP_OPT_X_SASL_NOCANON, migauth_ldap_opt_on())
        _ = ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv)
        _ = ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv)
    }

    deinit { _ = ldap_unbind_ext_s(ld, nil, nil) }

    static func text(_ rc: Int32) -> String {
        guard let s = ldap_err2string(rc) else { return "LDAP error \(rc)" }
        return String(cString: s)
    }

    private func diagnostic() -> String? {
        var message: UnsafeMutablePointer<CChar>? = nil
        guard ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &message) == LDAP_SUCCESS, let message else { return nil }
        defer { ldap_memfree(message) }
        return String(cString: message)
    }

    private func failure(_ operation: String, _ rc: Int32) -> LDAPError {
        LDAPError(operation: operation, code: rc, text: LDAPConnection.text(rc), diagnostic: diagnostic())
    }

    /// SASL GSSAPI with the default credential cache; every SASL prompt takes its default.
    func bindGSSAPI() throws(LDAPError) {
        let rc = ldap_sasl_interactive_bind_s(ld, nil, "GSSAPI", nil, nil, UInt32(LDAP_SASL_QUIET), { _, _, _, interact in
            guard var p = interact?.assumingMemoryBound(to: sasl_interact_t.self) else { return LDAP_SUCCESS }
            let empty = StaticString("").utf8Start
            while p.pointee.id != UInt(SASL_CB_LIST_END) {
                if let d = p.pointee.defresult {
                    p.pointee.result = UnsafeRawPointer(d)
                    p.pointee.len = UInt32(strlen(d))
                } else {
                    p.pointee.result = UnsafeRawPointer(empty)
                    p.pointee.len = 0
                }
                p += 1
            }
            return LDAP_SUCCESS
        }, nil)
        guard rc == LDAP_SUCCESS else { throw failure("SASL GSSAPI bind to \(uri)", rc) }
    }

    /// A search, paged when `pageSize` is given; search references are skipped.
    func search(base: String, scope: Scope, filter: String, attributes: [String], pageSize: Int32?) throws(LDAPError) -> [DirectoryRecord] {
        let operation = "search of \(base.isEmpty ? "the RootDSE" : base)"
        var cAttributes: [UnsafeMutablePointer<CChar>?] = attributes.map { strdup($0) }
        cAttributes.append(nil)
        defer { for a in cAttributes { free(a) } }
        var records: [DirectoryRecord] = []
        var cookie = berval(bv_len: 0, bv_val: nil)
        defer { if cookie.bv_val != nil { ber_memfree(cookie.bv_val) } }
        repeat {
            var page: UnsafeMutablePointer<LDAPControl>? = nil
            if let pageSize {
                let rc = ldap_create_page_control(ld, pageSize, &cookie, 1, &page)
                guard rc == LDAP_SUCCESS else { throw failure("paged-results control for \(operation)", rc) }
            }
            defer { if let page { ldap_control_free(page) } }
            var controls: [UnsafeMutablePointer<LDAPControl>?] = [page, nil]
            var result: OpaquePointer? = nil
            let rc = cAttributes.withUnsafeMutableBufferPointer { attrs in
                controls.withUnsafeMutableBufferPointer { ctrls in
                    ldap_search_ext_s(ld, base, scope.rawValue, filter, attrs.baseAddress, 0,
                                      page == nil ? nil : ctrls.baseAddress, nil, nil, 0, &result)
                }
            }
            defer { if let result { ldap_msgfree(result) } }
            guard rc == LDAP_SUCCESS, let result else { throw failure(operation, rc) }
            var entry = ldap_first_entry(ld, result)
            while let e = entry {
                records.append(try record(e, operation: operation))
                entry = ldap_next_entry(ld, e)
            }
            // The server's cookie for the next page; empty when done.
            if cookie.bv_val != nil { ber_memfree(cookie.bv_val); cookie = berval(bv_len: 0, bv_val: nil) }
            guard page != nil else { break }
            var code: Int32 = 0
            var returned: UnsafeMutablePointer<UnsafeMutablePointer<LDAPControl>?>? = nil
            let prc = ldap_parse_result(ld, result, &code, nil, nil, nil, &returned, 0)
            defer { if let returned { ldap_controls_free(returned) } }
            guard prc == LDAP_SUCCESS else { throw failure(operation, prc) }
            guard code == LDAP_SUCCESS else { throw failure(operation, code) }
            guard let response = ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, returned, nil) else { break }
            var count: Int32 = 0
            let crc = ldap_parse_pageresponse_control(ld, response, &count, &cookie)
            guard crc == LDAP_SUCCESS else { throw failure("paged-results response of \(operation)", crc) }
        } while cookie.bv_len > 0
        return records
    }

    private func record(_ entry: OpaquePointer, operation: String) throws(LDAPError) -> DirectoryRecord {
        var dn = ""
        if let d = ldap_get_dn(ld, entry) {
            dn = String(cString: d)
            ldap_memfree(d)
        }
        var values: [DirectoryRecord.Value] = []
        var ber: OpaquePointer? = nil
        var attribute = ldap_first_attribute(ld, entry, &ber)
        defer { if let ber { ber_free(ber, 0) } }
        while let a = attribute {
            let full = String(cString: a)
            ldap_memfree(a)
            // `member;range=0-1499`: AD sends large values in ranges; only a complete range is read.
            var name = full
            if let semicolon = full.firstIndex(of: ";") {
                name = String(full[..<semicolon])
                let options = full[full.index(after: semicolon)...].lowercased()
                if options.hasPrefix("range="), !options.hasSuffix("-*") {
                    throw LDAPError(operation: operation, code: 4, text: "Size limit exceeded",
                                    diagnostic: "\(dn) has more \(name) values than one response holds (\(full)); ranged retrieval is not supported",
                                    fix: "Export that directory as LDIF (ldifde -f, ldapsearch -LLL) and use --ldif.")
                }
            }
            if let list = ldap_get_values_len(ld, entry, full) {
                var i = 0
                while let bv = list[i] {
                    let bytes = UnsafeRawBufferPointer(start: bv.pointee.bv_val, count: Int(bv.pointee.bv_len))
                    if let text = String(validating: bytes, as: UTF8.self) {
                        values.append(DirectoryRecord.Value(name: name, value: text, line: 0))
                    }
                    i += 1
                }
                ldap_value_free_len(list)
            }
            attribute = ldap_next_attribute(ld, entry, ber)
        }
        return DirectoryRecord(dn: dn, line: 0, values: values)
    }
}
