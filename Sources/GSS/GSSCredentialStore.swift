import CGSSAPI
#if canImport(Glibc)
import Glibc
#endif

/// Where credentials come from or go to (MIT's credential store extension): explicit ccache and
/// keytab locations per call, so two "hosts" in one process never share the default ccache.
public struct GSSCredentialStore: Sendable, Hashable {
    /// `ccache`: e.g. `FILE:/tmp/hosta/cc` or `MEMORY:hosta`.
    public var ccache: String?
    /// `keytab`: the acceptor keytab, e.g. `FILE:/tmp/hosta/krb5.keytab`.
    public var keytab: String?
    /// `client_keytab`: keys the initiator may use to get its own tickets.
    public var clientKeytab: String?
    /// `rcache`: the acceptor's replay cache, e.g. `dfl:` or `none:`.
    public var replayCache: String?
    /// Further mechanism-specific elements (`password`, `verify`, …).
    public var extra: [String: String]

    public init(ccache: String? = nil, keytab: String? = nil, clientKeytab: String? = nil,
                replayCache: String? = nil, extra: [String: String] = [:]) {
        self.ccache = ccache
        self.keytab = keytab
        self.clientKeytab = clientKeytab
        self.replayCache = replayCache
        self.extra = extra
    }

    var elements: [(String, String)] {
        var e: [(String, String)] = []
        if let ccache { e.append(("ccache", ccache)) }
        if let keytab { e.append(("keytab", keytab)) }
        if let clientKeytab { e.append(("client_keytab", clientKeytab)) }
        if let replayCache { e.append(("rcache", replayCache)) }
        e += extra.sorted { $0.key < $1.key }
        return e
    }

    /// Calls `body` with a C key/value set, valid during the call.
    func withKeyValueSet<R>(_ body: (UnsafePointer<gss_key_value_set_desc>) -> R) -> R {
        let strings = elements.map { (strdup($0.0), strdup($0.1)) }
        defer { strings.forEach { free($0.0); free($0.1) } }
        var descs = strings.map { gss_key_value_element_desc(key: $0.0, value: $0.1) }
        return descs.withUnsafeMutableBufferPointer { buf in
            var set = gss_key_value_set_desc(count: OM_uint32(buf.count), elements: buf.baseAddress)
            return withUnsafePointer(to: &set) { body($0) }
        }
    }
}
