// libFuzzer target (docs/fuzzing.md): the CredSSP decoders of peer bytes — the stream's TSRequest framing
// (`wholeElementLength`), TSRequest with its NegoData, TSCredentials, TSPasswordCreds (and the server's
// string checks), and RDP's X.224 connection request/confirm. A decoded value re-encoded must decode to
// itself. Built only with MIGAUTH_FUZZ=1 and `-sanitize=fuzzer` (.ci/fuzz-smoke).
@testable import CredSSP
import SwiftASN1

let policy = CredSSPPolicy()

/// Decodes `bytes` as `T`; when that works, re-encodes and checks that the encoding decodes to the same value.
func roundTrip<T: DERParseable & DERSerializable & Equatable>(_ type: T.Type, _ bytes: [UInt8]) -> T? {
    guard let value = try? TSRequestCodec.decode(T.self, bytes, what: "\(T.self)") else { return nil }
    let again: T
    do {
        again = try TSRequestCodec.decode(T.self, try TSRequestCodec.encode(value), what: "\(T.self)")
    } catch {
        preconditionFailure("a decoded \(T.self) does not re-encode and decode: \(error)")
    }
    precondition(again == value, "\(T.self) changed in a round trip")
    return value
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTSRequest(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let start, count > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: start, count: count))
    if let whole = try? TSRequestCodec.wholeElementLength(bytes, policy: policy) {
        precondition(whole >= 2 && whole <= bytes.count, "element length \(whole) outside the \(bytes.count) bytes")
    }
    if (try? TSRequestCodec.decodeRequest(bytes, policy: policy)) != nil {
        _ = roundTrip(TSRequest.self, bytes)
    }
    _ = roundTrip(NegoData.self, bytes)
    if let credentials = roundTrip(TSCredentials.self, bytes) {
        _ = roundTrip(TSPasswordCreds.self, credentials.credentials)
    }
    if let password = roundTrip(TSPasswordCreds.self, bytes) {
        try? TSRequestCodec.checkString(password.domainName, field: "domain", policy: policy)
        try? TSRequestCodec.checkString(password.userName, field: "user name", policy: policy)
        try? TSRequestCodec.checkString(password.password, field: "password", policy: policy)
    }
    _ = try? X224.tpktLength(bytes)
    if let request = try? RDPConnectionRequest(x224: bytes) {
        precondition((try? RDPConnectionRequest(x224: request.x224Bytes)) == request, "X.224 request round trip")
    }
    if let confirm = try? RDPConnectionConfirm(x224: bytes) {
        precondition((try? RDPConnectionConfirm(x224: confirm.x224Bytes)) == confirm, "X.224 confirm round trip")
    }
    return 0
}
