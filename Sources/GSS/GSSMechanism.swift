import CGSSAPI

/// A GSSAPI mechanism, named by its object identifier.
public struct GSSMechanism: Sendable, Hashable, CustomStringConvertible {
    /// The DER contents of the OID (without tag and length).
    public let oid: [UInt8]

    public init(oid: [UInt8]) { self.oid = oid }

    /// Kerberos V5 (1.2.840.113554.1.2.2), the default.
    public static let kerberos = GSSMechanism(oid: [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x12, 0x01, 0x02, 0x02])
    /// SPNEGO (1.3.6.1.5.5.2), negotiating Kerberos; what Windows calls "Negotiate".
    public static let spnego = GSSMechanism(oid: [0x2B, 0x06, 0x01, 0x05, 0x05, 0x02])

    /// Dotted form, for example `1.2.840.113554.1.2.2`.
    public var dotted: String {
        guard let first = oid.first else { return "" }
        var parts = ["\(first / 40)", "\(first % 40)"]
        var value: UInt64 = 0
        for byte in oid.dropFirst() {
            value = (value << 7) | UInt64(byte & 0x7F)
            if byte & 0x80 == 0 { parts.append("\(value)"); value = 0 }
        }
        return parts.joined(separator: ".")
    }

    public var description: String {
        switch self {
        case .kerberos: "Kerberos"
        case .spnego: "SPNEGO"
        default: dotted
        }
    }

    init(_ oid: gss_OID?) {
        guard let oid, let elements = oid.pointee.elements, oid.pointee.length > 0 else {
            self.init(oid: [])
            return
        }
        self.init(oid: Array(UnsafeRawBufferPointer(start: elements, count: Int(oid.pointee.length))))
    }

    /// Calls `body` with a C OID for this mechanism, valid during the call.
    func withOID<R>(_ body: (gss_OID) -> R) -> R {
        var bytes = oid
        let count = bytes.count
        return bytes.withUnsafeMutableBytes { raw in
            var desc = gss_OID_desc(length: OM_uint32(count), elements: raw.baseAddress)
            return withUnsafeMutablePointer(to: &desc) { body($0) }
        }
    }

    /// Calls `body` with a C OID set holding `mechanisms`, valid during the call.
    static func withOIDSet<R>(_ mechanisms: [GSSMechanism], _ body: (gss_OID_set?) -> R) -> R {
        if mechanisms.isEmpty { return body(nil) }
        // One contiguous allocation per OID keeps the element pointers stable for the call.
        let storage = mechanisms.map { m -> UnsafeMutableRawBufferPointer in
            let p = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, m.oid.count), alignment: 1)
            p.copyBytes(from: m.oid)
            return p
        }
        defer { storage.forEach { $0.deallocate() } }
        var descs = zip(mechanisms, storage).map { m, p in
            gss_OID_desc(length: OM_uint32(m.oid.count), elements: p.baseAddress)
        }
        return descs.withUnsafeMutableBufferPointer { buf in
            var set = gss_OID_set_desc(count: buf.count, elements: buf.baseAddress)
            return withUnsafeMutablePointer(to: &set) { body($0) }
        }
    }
}
