import SwiftASN1

/// `TSRequest` ([MS-CSSP] 2.2.1): every CredSSP message after the TLS handshake.
///
/// ```
/// TSRequest ::= SEQUENCE {
///     version     [0] INTEGER,
///     negoTokens  [1] NegoData     OPTIONAL,
///     authInfo    [2] OCTET STRING OPTIONAL,
///     pubKeyAuth  [3] OCTET STRING OPTIONAL,
///     errorCode   [4] INTEGER      OPTIONAL,  -- version 3 and later
///     clientNonce [5] OCTET STRING OPTIONAL   -- version 5 and later
/// }
/// ```
public struct TSRequest: DERImplicitlyTaggable, Hashable, Sendable {
    public static var defaultIdentifier: ASN1Identifier { .sequence }

    public var version: Int
    public var negoTokens: NegoData?
    /// The encrypted ``TSCredentials`` (last client message).
    public var authInfo: [UInt8]?
    /// The encrypted public-key binding.
    public var pubKeyAuth: [UInt8]?
    /// An NTSTATUS/HRESULT; on the wire a signed 32-bit INTEGER (0x8009030C is -2146893044).
    public var errorCode: UInt32?
    /// 32 random bytes (version 5 and later).
    public var clientNonce: [UInt8]?

    public init(version: Int, negoTokens: NegoData? = nil, authInfo: [UInt8]? = nil, pubKeyAuth: [UInt8]? = nil,
                errorCode: UInt32? = nil, clientNonce: [UInt8]? = nil) {
        self.version = version
        self.negoTokens = negoTokens
        self.authInfo = authInfo
        self.pubKeyAuth = pubKeyAuth
        self.errorCode = errorCode
        self.clientNonce = clientNonce
    }

    public init(derEncoded rootNode: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        self = try DER.sequence(rootNode, identifier: identifier) { nodes in
            let version = try DER.explicitlyTagged(&nodes, tagNumber: 0, tagClass: .contextSpecific) {
                try Int(derEncoded: $0)
            }
            let nego = try DER.optionalExplicitlyTagged(&nodes, tagNumber: 1, tagClass: .contextSpecific) {
                try NegoData(derEncoded: $0)
            }
            let authInfo = try Self.optionalOctets(&nodes, tag: 2)
            let pubKeyAuth = try Self.optionalOctets(&nodes, tag: 3)
            let errorCode = try DER.optionalExplicitlyTagged(&nodes, tagNumber: 4, tagClass: .contextSpecific) {
                // Signed 32-bit on the wire; tolerate a peer that encodes it as a positive 33-bit value.
                let value = try Int64(derEncoded: $0)
                if let signed = Int32(exactly: value) { return UInt32(bitPattern: signed) }
                guard let unsigned = UInt32(exactly: value) else {
                    throw ASN1Error.invalidASN1Object(reason: "errorCode out of 32-bit range")
                }
                return unsigned
            }
            let nonce = try Self.optionalOctets(&nodes, tag: 5)
            return TSRequest(version: version, negoTokens: nego, authInfo: authInfo, pubKeyAuth: pubKeyAuth,
                             errorCode: errorCode, clientNonce: nonce)
        }
    }

    public func serialize(into coder: inout DER.Serializer, withIdentifier identifier: ASN1Identifier) throws {
        try coder.appendConstructedNode(identifier: identifier) { coder in
            try coder.serialize(version, explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific)
            if let negoTokens {
                try coder.serialize(negoTokens, explicitlyTaggedWithTagNumber: 1, tagClass: .contextSpecific)
            }
            try Self.serializeOctets(authInfo, tag: 2, into: &coder)
            try Self.serializeOctets(pubKeyAuth, tag: 3, into: &coder)
            if let errorCode {
                try coder.serialize(Int32(bitPattern: errorCode), explicitlyTaggedWithTagNumber: 4,
                                    tagClass: .contextSpecific)
            }
            try Self.serializeOctets(clientNonce, tag: 5, into: &coder)
        }
    }

    private static func optionalOctets(_ nodes: inout ASN1NodeCollection.Iterator, tag: UInt) throws -> [UInt8]? {
        try DER.optionalExplicitlyTagged(&nodes, tagNumber: tag, tagClass: .contextSpecific) {
            Array(try ASN1OctetString(derEncoded: $0).bytes)
        }
    }

    private static func serializeOctets(_ bytes: [UInt8]?, tag: UInt, into coder: inout DER.Serializer) throws {
        guard let bytes else { return }
        try coder.serialize(ASN1OctetString(contentBytes: bytes[...]), explicitlyTaggedWithTagNumber: tag,
                            tagClass: .contextSpecific)
    }
}
