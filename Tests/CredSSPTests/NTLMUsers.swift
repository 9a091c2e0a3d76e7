import Foundation
import GSS

/// NTLM accounts for gss-ntlmssp (our side) and pyspnego (the peer): `NTLM_USER_FILE`s of "DOMAIN:user:password".
///
/// gss-ntlmssp reads the file named by this process's `NTLM_USER_FILE` on both sides: the acceptor checks
/// passwords against it, and the initiator takes its password from it (not the one given to
/// `gss_acquire_cred_with_password`; without the file its context step fails with ENOENT). So
/// ``withUserFiles(ourPassword:_:)`` sets it for this process while `body` runs; the NTLM suite is serialized.
enum NTLMUsers {
    static let domain = "MIGRATION"
    static let user = "ntlmuser"
    static let password = "Ntlm-Pa55w0rd"
    /// `DOMAIN\user`, as a Windows client names itself.
    static var qualifiedUser: String { "\(domain)\\\(user)" }

    /// gss-ntlmssp's mechanism (1.3.6.1.4.1.311.2.2.10), registered by `/etc/gss/mech.d/mech.ntlmssp.conf`.
    static let mechanism = GSSMechanism(oid: [0x2B, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0A])

    /// Runs `body` with the peer's user file (the account with ``password``) while this process's
    /// `NTLM_USER_FILE` holds the account with `ourPassword`; both files are removed afterwards. Calls from
    /// different suites (pyspnego, FreeRDP) take turns: the variable is process-wide.
    static func withUserFiles<T>(ourPassword: String = password, _ body: (String) async throws -> T) async throws -> T {
        await turns.acquire()
        do {
            let result = try await withUserFilesHeld(ourPassword: ourPassword, body)
            await turns.release()
            return result
        } catch {
            await turns.release()
            throw error
        }
    }

    private static func withUserFilesHeld<T>(ourPassword: String, _ body: (String) async throws -> T) async throws -> T {
        let peerFile = try write(password)
        let ourFile = try write(ourPassword)
        setenv("NTLM_USER_FILE", ourFile, 1)
        defer {
            unsetenv("NTLM_USER_FILE")
            try? FileManager.default.removeItem(atPath: peerFile)
            try? FileManager.default.removeItem(atPath: ourFile)
        }
        return try await body(peerFile)
    }

    private static func write(_ password: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("credssp-ntlm-\(UUID().uuidString)").path
        try "\(domain):\(user):\(password)\n".write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private static let turns = AsyncTurns()
}

/// A lock for async code: one holder at a time, the others wait in order.
actor AsyncTurns {
    private var held = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        guard held else {
            held = true
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func release() {
        if waiting.isEmpty { held = false } else { waiting.removeFirst().resume() }
    }
}
