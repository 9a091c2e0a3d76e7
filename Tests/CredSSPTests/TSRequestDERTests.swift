@testable import CredSSP
import SwiftASN1
import Testing

/// DER encoding of every CredSSP message: round trips and known-good bytes.
@Suite struct TSRequestDERTests {
    static func hex(_ string: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var index = string.startIndex
        while index < string.endIndex {
            let next = string.index(index, offsetBy: 2)
            bytes.append(UInt8(string[index..<next], radix: 16)!)
            index = next
        }
        return bytes
    }

    static func encode<T: DERSerializable>(_ value: T) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(value)
        return serializer.serializedBytes
    }

    @Test func tsRequestRoundTripsWithEveryField() throws {
        let request = TSRequest(version: 6, negoTokens: NegoData(tokens: [[0x60, 0x01, 0x02]]), authInfo: [1, 2, 3],
                                pubKeyAuth: [4, 5], errorCode: 0x8009_030C, clientNonce: Array(repeating: 0x11, count: 32))
        let bytes = try Self.encode(request)
        #expect(try TSRequest(derEncoded: bytes) == request)
    }

    @Test(arguments: 2...6) func tsRequestRoundTripsMinimal(version: Int) throws {
        let request = TSRequest(version: version)
        #expect(try TSRequest(derEncoded: try Self.encode(request)) == request)
    }

    @Test func errorCodeIsASigned32BitInteger() throws {
        // TSRequest { version 6, errorCode 0x8009030C } built by hand from the ASN.1: the INTEGER is negative.
        let expected = Self.hex("300d" + "a003020106" + "a406020480 09030c".replacingOccurrences(of: " ", with: ""))
        #expect(try Self.encode(TSRequest(version: 6, errorCode: 0x8009_030C)) == expected)
        #expect(try TSRequest(derEncoded: expected).errorCode == 0x8009_030C)
    }

    @Test func decodesPyspnegoBytes() throws {
        // Captured from pyspnego 0.12.4's TSRequest.pack(); it writes errorCode as a positive 5-byte INTEGER.
        let full = Self.hex("3047a003020106a10b30093007a0050403600102a20404024149a3040402504ba403020100"
                            + "a52204201111111111111111111111111111111111111111111111111111111111111111")
        let request = try TSRequest(derEncoded: full)
        #expect(request.version == 6)
        #expect(request.negoTokens?.tokens == [[0x60, 0x01, 0x02]])
        #expect(request.authInfo == Array("AI".utf8))
        #expect(request.pubKeyAuth == Array("PK".utf8))
        #expect(request.errorCode == 0)
        #expect(request.clientNonce == Array(repeating: 0x11, count: 32))

        let error = try TSRequest(derEncoded: Self.hex("300ea003020106a4070205008009030c"))
        #expect(error.errorCode == 0x8009_030C)
    }

    @Test func tsCredentialsMatchPyspnego() throws {
        let wire = Self.hex("303da003020101a13604343032a00e040c44004f004d00410049004e00a10a04087500730065007200"
                            + "a2140412500061007300730077003000720064002100")
        let credentials = try TSCredentials(derEncoded: wire)
        #expect(credentials.credType == 1)
        let password = try TSPasswordCreds(derEncoded: credentials.credentials)
        let value = CredSSPCredentials(wire: password)
        #expect(value.domain == "DOMAIN")
        #expect(value.user == "user")
        #expect(value.password == "Passw0rd!")
        // And our encoder writes the same bytes.
        let ours = CredSSPCredentials(domain: "DOMAIN", user: "user", password: "Passw0rd!")
        #expect(try Self.encode(TSCredentials(credType: 1, credentials: try Self.encode(ours.wire))) == wire)
    }

    @Test func negoDataRoundTripsSeveralTokens() throws {
        let data = NegoData(tokens: [[1], [], [2, 3]])
        #expect(try NegoData(derEncoded: try Self.encode(data)) == data)
    }

    @Test func passwordCredsRoundTrip() throws {
        let creds = TSPasswordCreds(domainName: [0x41, 0], userName: [0x42, 0], password: [0x43, 0])
        #expect(try TSPasswordCreds(derEncoded: try Self.encode(creds)) == creds)
        #expect(!creds.description.contains("43"))
    }

    @Test func wrongTagIsATypedError() throws {
        // version under [1] instead of [0].
        let bytes = Self.hex("3005a103020106")
        #expect { try TSRequestCodec.decodeRequest(bytes, policy: CredSSPPolicy()) } throws: { error in
            (error as? CredSSPError)?.kind == .malformedMessage && (error as? CredSSPError)?.status == .invalidToken
        }
    }

    @Test func oversizedRequestIsRefusedBeforeParsing() throws {
        let big = TSRequest(version: 6, negoTokens: NegoData(tokens: [Array(repeating: 0, count: 70_000)]))
        let bytes = try Self.encode(big)
        #expect { try TSRequestCodec.decodeRequest(bytes, policy: CredSSPPolicy()) } throws: { error in
            (error as? CredSSPError)?.kind == .sizeLimitExceeded
        }
    }

    @Test func credentialsNeverShowThePasswordAndWipe() {
        let credentials = CredSSPCredentials(domain: "CONTOSO", user: "alice", password: "S3cret!pw")
        #expect(!credentials.description.contains("S3cret"))
        #expect(!String(reflecting: credentials).contains("S3cret"))
        #expect(!"\(Mirror(reflecting: credentials).children.map { "\($0.value)" })".contains("S3cret"))
        #expect(credentials.description.contains("alice"))
        credentials.wipe()
        #expect(credentials.isWiped)
        #expect(credentials.password.isEmpty)
    }
}
