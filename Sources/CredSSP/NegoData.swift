import SwiftASN1

/// `NegoData` ([MS-CSSP] 2.2.1.1): the inner (SPNEGO) tokens carried in a ``TSRequest``.
///
/// ```
/// NegoData ::= SEQUENCE OF SEQUENCE { negoToken [0] OCTET STRING }
/// ```
public struct NegoData: DERImplicitlyTaggable, Hashable, Sendable {
    public static var defaultIdentifier: ASN1Identifier { .sequence }

    /// The tokens, in order; CredSSP sends exactly one.
    public var tokens: [[UInt8]]

    public init(tokens: [[UInt8]]) { self.tokens = tokens }

    public init(derEncoded rootNode: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        self.tokens = try DER.sequence(of: Entry.self, identifier: identifier, rootNode: rootNode).map(\.token)
    }

    public func serialize(into coder: inout DER.Serializer, withIdentifier identifier: ASN1Identifier) throws {
        try coder.serializeSequenceOf(tokens.map(Entry.init), identifier: identifier)
    }

    /// One `SEQUENCE { negoToken [0] OCTET STRING }`.
    struct Entry: DERImplicitlyTaggable {
        static var defaultIdentifier: ASN1Identifier { .sequence }
        var token: [UInt8]

        init(token: [UInt8]) { self.token = token }

        init(derEncoded rootNode: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
            self.token = try DER.sequence(rootNode, identifier: identifier) { nodes in
                try DER.explicitlyTagged(&nodes, tagNumber: 0, tagClass: .contextSpecific) {
                    Array(try ASN1OctetString(derEncoded: $0).bytes)
                }
            }
        }

        func serialize(into coder: inout DER.Serializer, withIdentifier identifier: ASN1Identifier) throws {
            try coder.appendConstructedNode(identifier: identifier) { coder in
                try coder.serialize(ASN1OctetString(contentBytes: token[...]),
                                    explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific)
            }
        }
    }
}
