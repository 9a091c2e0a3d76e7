import Foundation
import GSS
import Testing
import WindowsStatus

/// Proof 5: real KDC failures arrive as typed errors with the Windows status Hyper-V would show.
@Suite("GSS error mapping against a real KDC")
struct ErrorMappingTests {
    @Test("unknown service principal → SEC_E_TARGET_UNKNOWN 0x80090303")
    func unknownService() async throws {
        let user = try await GSSFixture.user()
        let error = try await onThread { () throws -> GSSError? in
            var initiator = GSSInitiatorContext(target: try GSSName(service: "nosuch", host: "absent-\(GSSFixture.unique()).test"),
                                                credential: try user.credential())
            return gssError { () throws(GSSError) in _ = try initiator.step() }
        }
        #expect(error?.windowsStatus == .targetUnknown, "\(String(describing: error))")
        #expect(error?.windowsStatus.hex == "0x80090303")
        #expect(error?.operation == .initSecContext)
        #expect(error?.major == .failure)
        #expect(error?.minorMessages.joined().contains("not found in Kerberos database") == true)
        #expect(error?.explanation.contains("SPN") == true)
    }

    @Test("wrong password → SEC_E_LOGON_DENIED 0x8009030C")
    func wrongPassword() async throws {
        let user = try await GSSFixture.user()
        let service = try await GSSFixture.service()
        let error = try await onThread { () throws -> GSSError? in
            gssError { () throws(GSSError) in
                // MIT may defer the AS exchange to the first init_sec_context: do both.
                let credential = try GSSCredential.acquire(name: GSSName(principal: user.principal),
                                                           password: "not-" + user.password)
                var initiator = GSSInitiatorContext(target: try service.targetName(), credential: credential)
                _ = try initiator.step()
            }
        }
        #expect(error?.windowsStatus == .logonDenied, "\(String(describing: error))")
        #expect(error?.windowsStatus.hex == "0x8009030C")
    }

    @Test("unknown user with a password → SEC_E_LOGON_DENIED")
    func unknownUser() async throws {
        let realm = try await GSSFixture.realm()
        let error = try await onThread { () throws -> GSSError? in
            gssError { () throws(GSSError) in
                let credential = try GSSCredential.acquire(name: GSSName(principal: "ghost-\(GSSFixture.unique())@\(realm.name)"),
                                                           password: "whatever")
                _ = try credential.inquire()
            }
        }
        #expect(error?.windowsStatus == .logonDenied, "\(String(describing: error))")
    }

    @Test("missing ccache → SEC_E_NO_CREDENTIALS 0x8009030E")
    func missingCCache() async throws {
        let error = gssError { () throws(GSSError) in
            _ = try GSSCredential.acquire(usage: .initiate,
                                          store: GSSCredentialStore(ccache: "FILE:/tmp/migauth-none-\(GSSFixture.unique())"))
        }
        #expect(error?.windowsStatus == .noCredentials, "\(String(describing: error))")
        #expect(error?.windowsStatus.hex == "0x8009030E")
        #expect(error?.operation == .acquireCredential)
    }

    @Test("missing keytab for an acceptor → SEC_E_NO_CREDENTIALS")
    func missingKeytab() async throws {
        let error = gssError { () throws(GSSError) in
            _ = try GSSCredential.acquire(name: GSSName(service: "host", host: "nowhere.test"), usage: .accept,
                                          store: GSSCredentialStore(keytab: "FILE:/tmp/migauth-none-\(GSSFixture.unique()).keytab"))
        }
        #expect(error?.windowsStatus == .noCredentials, "\(String(describing: error))")
    }

    @Test("unreachable KDC → SEC_E_NO_AUTHENTICATING_AUTHORITY 0x80090311")
    func unreachableKDC() async throws {
        let realm = try await GSSFixture.realm()
        let unreachable = try #require(realm.extraRealmPorts.keys.first)
        let error = try await onThread { () throws -> GSSError? in
            gssError { () throws(GSSError) in
                let credential = try GSSCredential.acquire(name: GSSName(principal: "someone@\(unreachable)"),
                                                           password: "whatever")
                _ = try credential.inquire()
            }
        }
        #expect(error?.windowsStatus == .noAuthenticatingAuthority, "\(String(describing: error))")
        #expect(error?.windowsStatus.hex == "0x80090311")
    }

    @Test("unreachable KDC with SPNEGO (gss-ntlmssp installed) → 0x80090311, not NTLM's bad name 0x80090303")
    func unreachableKDCThroughSPNEGO() async throws {
        let realm = try await GSSFixture.realm()
        let unreachable = try #require(realm.extraRealmPorts.keys.first)
        let errors = try await onThread { () throws -> [GSSError?] in
            let name = try GSSName(principal: "someone@\(unreachable)")
            // The destination's sign-on: a password AS exchange for Kerberos and SPNEGO.
            let password = gssError { () throws(GSSError) in
                _ = try GSSCredential.acquire(name: name, password: "whatever", mechanisms: [.kerberos, .spnego])
            }
            // A SPNEGO credential from a ccache that holds no ticket for the name.
            let store = gssError { () throws(GSSError) in
                _ = try GSSCredential.acquire(name: name, mechanisms: [.spnego],
                                              store: GSSCredentialStore(ccache: "MEMORY:empty-\(GSSFixture.unique())"))
            }
            return [password, store]
        }
        #expect(errors[0]?.windowsStatus == .noAuthenticatingAuthority, "\(String(describing: errors[0]))")
        #expect(errors[0]?.windowsStatus.hex == "0x80090311")
        #expect(errors[0]?.krb5ErrorCode != nil)
        // No KDC is asked here: Kerberos's "no credentials" wins over NTLM's bad name.
        #expect(errors[1]?.windowsStatus == .noCredentials, "\(String(describing: errors[1]))")
    }

    @Test("acceptor with the wrong keytab → SEC_E_WRONG_PRINCIPAL 0x80090322")
    func wrongKey() async throws {
        let realm = try await GSSFixture.realm()
        let service = try await GSSFixture.service()
        let user = try await GSSFixture.user()
        // Keys change after the keytab was exported: the ticket is encrypted with the new key.
        try await realm.setPassword(service.principal, password: nil)
        let error = try await onThread { () throws -> GSSError? in
            var initiator = GSSInitiatorContext(target: try service.targetName(), credential: try user.credential())
            var acceptor = GSSAcceptorContext(credential: try service.acceptorCredential())
            return gssError { () throws(GSSError) in
                let step = try initiator.step()
                _ = try acceptor.step(step.token ?? [])
            }
        }
        #expect(error?.operation == .acceptSecContext)
        #expect(error?.windowsStatus == .wrongPrincipal, "\(String(describing: error))")
        // MIT answers with a KRB-ERROR token (application tag 30 inside the GSS framing) for the initiator.
        #expect(error?.peerToken.map { $0.first == 0x60 } == true)
    }

    @Test("decoding of major status fields", arguments: [
        (UInt32(0x000D_0000), "GSS_S_FAILURE"),
        (UInt32(0x0006_0000), "GSS_S_BAD_SIG"),
        (UInt32(0x0000_0002), "GSS_S_COMPLETE | GSS_S_DUPLICATE_TOKEN"),
        (UInt32(0x0109_0000), "GSS_S_CALL_INACCESSIBLE_READ | GSS_S_DEFECTIVE_TOKEN"),
    ])
    func majorNames(raw: UInt32, expected: String) {
        #expect(GSSMajorStatus(rawValue: raw).description == expected)
    }

    @Test("minor codes are mapped before the major code")
    func minorFirst() {
        let badOption = GSSError(operation: .initSecContext, major: .failure, minor: 2_529_638_925,
                                 majorMessages: [], minorMessages: ["KDC can't fulfill requested option"])
        #expect(badOption.windowsStatus == .noCredentials)
        #expect(badOption.explanation.contains("delegat"))
        let skew = GSSError(operation: .acceptSecContext, major: .failure, minor: UInt32(bitPattern: -1765328347),
                            majorMessages: [], minorMessages: [])
        #expect(skew.windowsStatus == .timeSkew)
        let expired = GSSError(operation: .acceptSecContext, major: .failure, minor: UInt32(bitPattern: -1765328352),
                               majorMessages: [], minorMessages: [])
        #expect(expired.windowsStatus == .contextExpired)
        let noCred = GSSError(operation: .acquireCredential, major: .noCredentials, minor: 0,
                              majorMessages: [], minorMessages: [])
        #expect(noCred.windowsStatus == .noCredentials)
        let defective = GSSError(operation: .acceptSecContext, major: .defectiveToken, minor: 0,
                                 majorMessages: [], minorMessages: [])
        #expect(defective.windowsStatus == .invalidToken)
        let ktOnAccept = GSSError(operation: .acceptSecContext, major: .failure, minor: UInt32(bitPattern: -1765328203),
                                  majorMessages: [], minorMessages: [])
        #expect(ktOnAccept.windowsStatus == .wrongPrincipal)
        let unreach = GSSError(operation: .initSecContext, major: .failure, minor: UInt32(bitPattern: -1765328228),
                               majorMessages: [], minorMessages: [])
        #expect(unreach.windowsStatus == .noAuthenticatingAuthority)
    }

    @Test("an unknown krbtgt/OTHER@OWN (no trust path, rule P5) reads 0x80090311; other unknown servers stay 0x80090303")
    func noTrustPath() {
        let sPrincipalUnknown = UInt32(bitPattern: -1765328377)
        let noPath = GSSError(operation: .initSecContext, major: .failure, minor: sPrincipalUnknown, majorMessages: [],
                              minorMessages: ["Server krbtgt/TAILSPIN.COM@CONTOSO.COM not found in Kerberos database"])
        #expect(noPath.windowsStatus == .noAuthenticatingAuthority)
        #expect(noPath.explanation.contains("krbtgt/TAILSPIN.COM@CONTOSO.COM"))
        // Through SPNEGO (a substitute minor number): resolved from the text.
        let substitute = GSSError(operation: .initSecContext, major: .failure, minor: 100_005, majorMessages: [],
                                  minorMessages: ["Server krbtgt/TAILSPIN.COM@CONTOSO.COM not found in Kerberos database"])
        #expect(substitute.windowsStatus == .noAuthenticatingAuthority)
        let service = GSSError(operation: .initSecContext, major: .failure, minor: sPrincipalUnknown, majorMessages: [],
                               minorMessages: ["Server Microsoft Virtual System Migration Service/b.fabrikam.com@CONTOSO.COM not found in Kerberos database"])
        #expect(service.windowsStatus == .targetUnknown)
        let ownTGS = GSSError(operation: .initSecContext, major: .failure, minor: sPrincipalUnknown, majorMessages: [],
                              minorMessages: ["Server krbtgt/CONTOSO.COM@CONTOSO.COM not found in Kerberos database"])
        #expect(ownTGS.windowsStatus == .targetUnknown)
    }
}
