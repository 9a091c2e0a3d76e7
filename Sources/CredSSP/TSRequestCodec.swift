import SwiftASN1

/// DER encoding and size-checked decoding of the CredSSP messages.
enum TSRequestCodec {
    static func encode<T: DERSerializable>(_ value: T) throws -> [UInt8] {
        var serializer = DER.Serializer()
        do {
            try serializer.serialize(value)
        } catch {
            throw CredSSPError(.malformedMessage, .internalError, "Cannot encode \(T.self): \(error)")
        }
        return serializer.serializedBytes
    }

    static func decodeRequest(_ bytes: [UInt8], policy: CredSSPPolicy) throws -> TSRequest {
        guard bytes.count <= policy.maximumMessageBytes else {
            throw CredSSPError.tooLarge("TSRequest", bytes.count, limit: policy.maximumMessageBytes)
        }
        return try decode(TSRequest.self, bytes, what: "TSRequest")
    }

    static func decode<T: DERParseable>(_ type: T.Type, _ bytes: [UInt8], what: String) throws -> T {
        guard !bytes.isEmpty else {
            throw CredSSPError(.malformedMessage, .invalidToken, "The peer sent an empty \(what)")
        }
        do {
            return try T(derEncoded: bytes)
        } catch {
            throw CredSSPError.malformed(what, error)
        }
    }

    /// The size of the DER element at the start of `bytes` (header included) once all of it is there; nil while
    /// it is incomplete. For byte streams, where a TSRequest can arrive in pieces.
    static func wholeElementLength(_ bytes: [UInt8], policy: CredSSPPolicy) throws -> Int? {
        guard bytes.count >= 2 else { return nil }
        let first = bytes[1]
        var length = Int(first)
        var header = 2
        if first >= 0x80 {
            let count = Int(first & 0x7F)
            guard count >= 1, count <= 4 else {
                throw CredSSPError(.malformedMessage, .invalidToken,
                                   "The peer's TSRequest has an unsupported DER length form (0x\(String(first, radix: 16)))")
            }
            guard bytes.count >= 2 + count else { return nil }
            length = bytes[2..<(2 + count)].reduce(0) { $0 << 8 | Int($1) }
            header += count
        }
        let total = header + length
        guard total <= policy.maximumMessageBytes else {
            throw CredSSPError.tooLarge("TSRequest", total, limit: policy.maximumMessageBytes)
        }
        return bytes.count >= total ? total : nil
    }

    /// Checks a wire string's size; `field` names it in the error.
    static func checkString(_ bytes: [UInt8], field: String, policy: CredSSPPolicy) throws {
        guard bytes.count % 2 == 0 else {
            throw CredSSPError(.invalidCredentials, .invalidToken, "The \(field) is not UTF-16 (odd length)")
        }
        guard bytes.count / 2 <= policy.maximumStringUTF16Units else {
            throw CredSSPError.tooLarge(field, bytes.count / 2, limit: policy.maximumStringUTF16Units)
        }
    }
}
