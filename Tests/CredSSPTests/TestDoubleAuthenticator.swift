import Crypto
import CredSSP
import Foundation
import WindowsStatus

/// A small, real inner mechanism for tests: password proof over SHA-256, ChaCha20-Poly1305 wrapping.
///
/// `.threeLeg` runs like NTLM (negotiate, challenge, proof: the client completes first and its last token
/// travels with pubKeyAuth); `.mutual` runs like Kerberos (proof, then the server's confirmation completes the client).
final class TestDoubleAuthenticator: CredSSPInnerAuthenticator {
    enum Flow { case threeLeg, mutual }
    enum Role { case client(user: String, password: String), server(users: [String: String]) }

    struct Failure: Error, WindowsStatusReporting {
        let windowsStatus: WindowsStatus
        let reason: String
    }

    let flow: Flow
    let role: Role
    /// When set, the client corrupts every message it wraps after the context completes (a tampered pubKeyAuth).
    var tamperWrap = false
    private(set) var isComplete = false
    private var key: SymmetricKey?
    private var challenge: [UInt8] = []
    private var user = ""

    init(flow: Flow, role: Role) {
        self.flow = flow
        self.role = role
    }

    func step(_ token: [UInt8]?) throws -> [UInt8]? {
        switch (role, flow) {
        case (.client(let user, let password), .threeLeg):
            guard let token else { return [0x11] + Array(user.utf8) }
            guard token.first == 0x12, token.count == 17 else { throw Failure(windowsStatus: .invalidToken, reason: "bad challenge") }
            challenge = Array(token.dropFirst())
            complete(password: password)
            return [0x13] + proof(password: password)
        case (.server(let users), .threeLeg):
            guard let token, let kind = token.first else { throw Failure(windowsStatus: .invalidToken, reason: "no token") }
            if kind == 0x11 {
                user = String(decoding: token.dropFirst(), as: UTF8.self)
                challenge = (0..<16).map { _ in UInt8.random(in: 0...255) }
                return [0x12] + challenge
            }
            guard kind == 0x13, let password = users[user], Array(token.dropFirst()) == proof(password: password) else {
                throw Failure(windowsStatus: .logonDenied, reason: "wrong password for \(user)")
            }
            complete(password: password)
            return nil
        case (.client(let user, let password), .mutual):
            guard let token else {
                challenge = (0..<16).map { _ in UInt8.random(in: 0...255) }
                return [0x01] + challenge + proof(password: password) + Array(user.utf8)
            }
            complete(password: password)
            guard token == [0x02] + confirmation() else {
                isComplete = false
                throw Failure(windowsStatus: .messageAltered, reason: "bad confirmation")
            }
            return nil
        case (.server(let users), .mutual):
            guard let token, token.first == 0x01, token.count > 49 else { throw Failure(windowsStatus: .invalidToken, reason: "bad proof") }
            challenge = Array(token[1..<17])
            user = String(decoding: token[49...], as: UTF8.self)
            guard let password = users[user], Array(token[17..<49]) == proof(password: password) else {
                throw Failure(windowsStatus: .logonDenied, reason: "wrong password for \(user)")
            }
            complete(password: password)
            return [0x02] + confirmation()
        }
    }

    func wrap(_ message: [UInt8]) throws -> [UInt8] {
        guard let key else { throw Failure(windowsStatus: .noCredentials, reason: "not complete") }
        var data = message
        if tamperWrap, !data.isEmpty { data[0] ^= 0xFF }
        return Array(try ChaChaPoly.seal(data, using: key).combined)
    }

    func unwrap(_ message: [UInt8]) throws -> [UInt8] {
        guard let key else { throw Failure(windowsStatus: .noCredentials, reason: "not complete") }
        do {
            return Array(try ChaChaPoly.open(ChaChaPoly.SealedBox(combined: message), using: key))
        } catch {
            throw Failure(windowsStatus: .messageAltered, reason: "integrity check failed")
        }
    }

    private func proof(password: String) -> [UInt8] {
        Array(SHA256.hash(data: Array("proof".utf8) + Array(password.utf8) + challenge))
    }

    private func confirmation() -> [UInt8] {
        guard let key else { return [] }
        return key.withUnsafeBytes { Array(SHA256.hash(data: Array("ack".utf8) + Array($0))) }
    }

    private func complete(password: String) {
        key = SymmetricKey(data: SHA256.hash(data: Array("key".utf8) + Array(password.utf8) + challenge))
        isComplete = true
    }
}
