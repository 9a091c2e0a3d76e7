import SwiftASN1

/// `TSCredentials` ([MS-CSSP] 2.2.1.2): the delegated credentials, encrypted into `authInfo`.
///
/// ```
/// TSCredentials ::= SEQUENCE { credType [0] INTEGER, credentials [1] OCTET STRING }
/// ```
/// `credType` 1 means `credentials` holds a DER ``TSPasswordCreds``.
public struct TSCredentials: DERImplicitlyTaggable, Hashable, Sendable {
    public static var defaultIdentifier: ASN1Identifier { .sequence }
    /// `credType` for password credentials.
    public static let passwordCredType = 1

    public var credType: Int
    public var credentials: [UInt8]

    public init(credType: Int, credentials: [UInt8]) {
        self.credType = credType
        self.credentials = credentials
    }

    public init(derEncoded rootNode: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        self = try DER.sequence(rootNode, identifier: identifier) { nodes in
            let type = try DER.explicitlyTagged(&nodes, tagNumber: 0, tagClass: .contextSpecific) {
                try Int(derEncoded: $0)
            }
            let creds = try DER.explicitlyTagged(&nodes, tagNumber: 1, tagClass: .contextSpecific) {
                Array(try ASN1OctetString(derEncoded: $0).bytes)
            }
            return TSCredentials(credType: type, credentials: creds)
        }
    }

    public func serialize(into coder: inout DER.Serializer, withIdentifier identifier: ASN1Identifier) throws {
        try coder.appendConstructedNode(identifier: identifier) { coder in
            try coder.serialize(credType, explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific)
            try coder.serialize(ASN1OctetString(contentBytes: credentials[...]), explicitlyTaggedWithTagNumber: 1,
                                tagClass: .contextSpecific)
        }
    }

    /// Overwrites the credential bytes with zeros.
    public mutating func wipe() { credentials.wipe() }
}
