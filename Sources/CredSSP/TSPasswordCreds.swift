import SwiftASN1

/// `TSPasswordCreds` ([MS-CSSP] 2.2.1.2.1): domain, user and password as UTF-16LE bytes.
///
/// ```
/// TSPasswordCreds ::= SEQUENCE {
///     domainName [0] OCTET STRING, userName [1] OCTET STRING, password [2] OCTET STRING }
/// ```
public struct TSPasswordCreds: DERImplicitlyTaggable, Hashable, Sendable, CustomStringConvertible {
    public static var defaultIdentifier: ASN1Identifier { .sequence }

    public var domainName: [UInt8]
    public var userName: [UInt8]
    public var password: [UInt8]

    public init(domainName: [UInt8], userName: [UInt8], password: [UInt8]) {
        self.domainName = domainName
        self.userName = userName
        self.password = password
    }

    public init(derEncoded rootNode: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        self = try DER.sequence(rootNode, identifier: identifier) { nodes in
            var fields: [[UInt8]] = []
            for tag in 0...2 as ClosedRange<UInt> {
                fields.append(try DER.explicitlyTagged(&nodes, tagNumber: tag, tagClass: .contextSpecific) {
                    Array(try ASN1OctetString(derEncoded: $0).bytes)
                })
            }
            return TSPasswordCreds(domainName: fields[0], userName: fields[1], password: fields[2])
        }
    }

    public func serialize(into coder: inout DER.Serializer, withIdentifier identifier: ASN1Identifier) throws {
        try coder.appendConstructedNode(identifier: identifier) { coder in
            for (tag, field) in [domainName, userName, password].enumerated() {
                try coder.serialize(ASN1OctetString(contentBytes: field[...]),
                                    explicitlyTaggedWithTagNumber: UInt(tag), tagClass: .contextSpecific)
            }
        }
    }

    /// The password never appears in logs.
    public var description: String {
        "TSPasswordCreds(domainName: \(domainName.count) bytes, userName: \(userName.count) bytes, password: <redacted>)"
    }

    /// Overwrites all three fields with zeros.
    public mutating func wipe() {
        domainName.wipe()
        userName.wipe()
        password.wipe()
    }
}

extension Array where Element == UInt8 {
    /// Overwrites the bytes in place with zeros, then empties the array.
    mutating func wipe() {
        withUnsafeMutableBufferPointer { buffer in
            for index in buffer.indices { buffer[index] = 0 }
        }
        removeAll()
    }
}
