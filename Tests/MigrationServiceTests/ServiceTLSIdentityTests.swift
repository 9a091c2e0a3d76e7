import CredSSP
import Foundation
@testable import MigrationService
import Testing

/// The daemon's generated TLS identity: made in memory (no key file, so a daemon killed at start-up leaves none),
/// and usable by the CredSSP server: a TLS 1.3 client completes the handshake, which verifies the server's signature
/// made with the key against the certificate's public key.
@Suite struct ServiceTLSIdentityTests {
    /// Just enough inner authentication for the client to send its first TSRequest after TLS.
    final class FirstTokenOnly: CredSSPInnerAuthenticator {
        func step(_ token: [UInt8]?) throws -> [UInt8]? { [0x60, 0x00] }
        var isComplete: Bool { false }
        func wrap(_ message: [UInt8]) throws -> [UInt8] { message }
        func unwrap(_ message: [UInt8]) throws -> [UInt8] { message }
    }

    @Test func generatedIdentityServesTLSWithoutWritingFiles() async throws {
        // No chdir into a scratch directory (the working directory is the process's: children that other suites
        // start meanwhile would inherit it and lose it when it is removed). Instead: nothing new in the working
        // directory, and no new file in the temporary directory holding a private key.
        let fm = FileManager.default
        let cwd = fm.currentDirectoryPath, tmp = NSTemporaryDirectory()
        let cwdBefore = Set((try? fm.contentsOfDirectory(atPath: cwd)) ?? [])
        let tmpBefore = Set((try? fm.contentsOfDirectory(atPath: tmp)) ?? [])

        let identity = try ServiceTLSIdentity.generate(commonName: "hostb.test")
        let other = try ServiceTLSIdentity.generate(commonName: "hostb.test")
        #expect(identity.certificateChain.count == 1)
        #expect(try identity.certificateChain[0].toDERBytes() != other.certificateChain[0].toDERBytes())
        #expect(identity.certificateChain[0].description.contains("hostb.test"))
        #expect(Set((try? fm.contentsOfDirectory(atPath: cwd)) ?? []).subtracting(cwdBefore).isEmpty)
        let newInTmp = Set((try? fm.contentsOfDirectory(atPath: tmp)) ?? []).subtracting(tmpBefore)
        let keyFiles = newInTmp.filter { name in
            fm.contents(atPath: (tmp as NSString).appendingPathComponent(name)).map { String(decoding: $0, as: UTF8.self).contains("PRIVATE KEY") } ?? false
        }
        #expect(keyFiles.isEmpty, "\(keyFiles)")

        let server = try CredSSPServer(certificateChain: identity.certificateChain, privateKey: identity.privateKey,
                                       inner: FirstTokenOnly(), policy: CredSSPPolicy(minimumTLSVersion: .tlsv13))
        let client = try CredSSPClient(credentials: CredSSPCredentials(domain: "D", user: "u", password: "p"),
                                       inner: FirstTokenOnly(), verification: .insecureAcceptAny,
                                       policy: CredSSPPolicy(minimumTLSVersion: .tlsv13))
        guard case .send(let hello) = try await client.step(nil),
              case .send(let serverFlight) = try await server.step(hello),
              case .send(let finished) = try await client.step(serverFlight)
        else {
            Issue.record("unexpected step")
            return
        }
        #expect(!finished.isEmpty)
        #expect(await client.tlsVersion == .tlsv13)
    }

    /// A certificate that does not belong to the key is refused by TLS: the check above is one that can fail.
    @Test func mismatchedKeyIsRefused() async throws {
        let identity = try ServiceTLSIdentity.generate(commonName: "hostb.test")
        let other = try ServiceTLSIdentity.generate(commonName: "hostb.test")
        let client = try CredSSPClient(credentials: CredSSPCredentials(domain: "D", user: "u", password: "p"),
                                       inner: FirstTokenOnly(), verification: .insecureAcceptAny)
        guard case .send(let hello) = try await client.step(nil) else {
            Issue.record("no ClientHello")
            return
        }
        var refused = false
        do {
            let server = try CredSSPServer(certificateChain: identity.certificateChain, privateKey: other.privateKey,
                                           inner: FirstTokenOnly())
            if case .send(let flight) = try await server.step(hello) { _ = try await client.step(flight) }
        } catch {
            refused = true
        }
        #expect(refused)
    }
}
