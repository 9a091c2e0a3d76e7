import CredSSP
import GSS

/// A user's reusable credentials on a host, as a CredSSP sign-on (or a console sign-on given the password) leaves
/// them: the password CredSSP delivered and the Kerberos credential acquired with it (rule A1).
///
/// Held in memory only, for as long as the sign-on lasts: ``wipe()`` zeroes the password bytes (sign-off,
/// connection close, daemon stop). A migration over CredSSP delivers a fresh copy of them to the destination.
public final class SignOnCredentials: Sendable, CustomStringConvertible {
    /// `user@REALM`.
    public let principal: String
    /// The user's own Kerberos credential (a TGT from the password, in a memory ccache).
    public let credential: GSSCredential
    /// The same user's credential for SPNEGO (CredSSP's inner authentication).
    let spnegoCredential: GSSCredential
    private let password: CredSSPCredentials

    init(principal: String, credential: GSSCredential, spnegoCredential: GSSCredential, password: CredSSPCredentials) {
        self.principal = principal
        self.credential = credential
        self.spnegoCredential = spnegoCredential
        self.password = password
    }

    /// Signs on `user@realm` with `password` (an AS exchange with the KDC, off the event loops).
    /// - Throws: the seed's connection error naming `destination` with the KDC's status: a wrong password is
    ///   SEC_E_LOGON_DENIED (0x8009030C).
    public static func signOn(user: String, realm: String, password: String,
                              destination: String) async throws(MigrationServiceError) -> SignOnCredentials {
        let principal = qualified(user, realm: realm)
        let credential: GSSCredential
        let spnegoCredential: GSSCredential
        do {
            let name = try GSSName(principal: principal)
            credential = try await GSSCredential.acquire(name: name, password: password)
            // The same TGT for SPNEGO: one AS exchange per sign-on, not one per mechanism.
            spnegoCredential = try credential.derived(mechanisms: [.spnego])
        } catch {
            throw .connection(.authentication, error.windowsStatus, destination: destination,
                              detail: "\(principal) cannot sign on: \(error.description)", gss: error)
        }
        let (name, domain) = split(principal)
        return SignOnCredentials(principal: principal, credential: credential, spnegoCredential: spnegoCredential,
                                 password: CredSSPCredentials(domain: domain, user: name, password: password))
    }

    /// What CredSSP delivers: a fresh copy (the CredSSP client wipes what it sent).
    func delivery() -> CredSSPCredentials {
        CredSSPCredentials(domain: password.domain, user: password.user, password: password.password)
    }

    /// Zeroes the password bytes; later deliveries carry empty credentials and fail.
    public func wipe() { password.wipe() }

    /// True once wiped.
    public var isWiped: Bool { password.isWiped }

    public var description: String { "SignOnCredentials(\(principal), password: <redacted>)" }

    /// `user@REALM` from a bare user name, a UPN, or delivered domain + user (a domain that names the realm or its
    /// first label, or none, means `realm`).
    static func qualified(_ user: String, domain: String = "", realm: String) -> String {
        if user.contains("@") { return user }
        let upper = domain.uppercased()
        let sameRealm = upper.isEmpty || upper == realm.uppercased() || realm.uppercased().hasPrefix(upper + ".")
        return "\(user)@\(sameRealm ? realm : upper)"
    }

    private static func split(_ principal: String) -> (user: String, domain: String) {
        guard let at = principal.lastIndex(of: "@") else { return (principal, "") }
        return (String(principal[..<at]), String(principal[principal.index(after: at)...]))
    }
}
