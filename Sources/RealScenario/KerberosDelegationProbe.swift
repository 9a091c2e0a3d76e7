import Foundation
import GSS
import WindowsStatus

/// The Kerberos half of a real move, as the source host performs it ("Use Kerberos only"
/// constrained delegation): the user's ticket to `host/<source>` reaches the source, which accepts
/// it with a usage-both credential (its keytab and its own TGT in its ccache), receives MIT's
/// proxy credential, and initiates to each target service as the user — S4U2Proxy at the real KDC.
///
/// With ``protocolTransitionFor`` the source instead gets the user's ticket itself (S4U2Self,
/// "Use any authentication protocol"), as a 2016+ source reached over WinRM must (rule A2b).
///
/// Run it in a process whose environment is the realm's (`KRB5_CONFIG`): `migauth scenario probe`.
package struct KerberosDelegationProbe: Sendable, Codable {
    /// The user's ccache on the machine the move is started from (`FILE:…`).
    package var userCCache: String
    /// `host/<source fqdn>@REALM`.
    package var sourcePrincipal: String
    package var sourceKeytab: String
    package var sourceClientKeytab: String
    /// The source host's own ccache (its TGT; removed by a ticket purge).
    package var sourceCCache: String
    /// Target principals (`Microsoft Virtual System Migration Service/<dest fqdn>@REALM`, …).
    package var targets: [String]
    /// The destination's keytab, to complete each context.
    package var targetKeytab: String
    /// Protocol transition ("Use any authentication protocol", rule A2b): the source has no
    /// ticket of the user (WinRM on 2016+) and asks the KDC for one itself (S4U2Self for this
    /// principal), then S4U2Proxy. MIT makes that ticket forwardable only with
    /// `+ok_to_auth_as_delegate`. Nil: the user's own ticket (`userCCache`) is the evidence.
    package var protocolTransitionFor: String? = nil

    package init(userCCache: String, sourcePrincipal: String, sourceKeytab: String, sourceClientKeytab: String,
                sourceCCache: String, targets: [String], targetKeytab: String) {
        self.userCCache = userCCache
        self.sourcePrincipal = sourcePrincipal
        self.sourceKeytab = sourceKeytab
        self.sourceClientKeytab = sourceClientKeytab
        self.sourceCCache = sourceCCache
        self.targets = targets
        self.targetKeytab = targetKeytab
    }

    /// What the probe saw.
    package struct Result: Error, Sendable, Codable, Equatable {
        /// nil on success; else the Windows status (0x8009030E for a refused delegation).
        package var status: UInt32?
        /// Where it stopped and MIT's message.
        package var detail: String
    }

    /// Runs the exchange (blocking; it talks to the KDC). Never throws: failures are results.
    package func run() -> Result {
        let source: GSSName, sourceCredential: GSSCredential
        do {
            source = try GSSName(principal: sourcePrincipal)
            sourceCredential = try GSSCredential.acquire(
                name: source, usage: .both,
                store: GSSCredentialStore(ccache: "FILE:" + sourceCCache, keytab: sourceKeytab, clientKeytab: sourceClientKeytab))
        } catch {
            return Result(status: error.windowsStatus.code, detail: "credentials: \(error)")
        }
        let proxy: GSSCredential
        switch evidence(source: source, sourceCredential: sourceCredential) {
        case .success(let credential): proxy = credential
        case .failure(let failure): return failure
        }
        // 3. S4U2Proxy to each target, completed against the destination's keytab.
        for target in targets {
            let acceptorCredential: GSSCredential, name: GSSName
            do {
                name = try GSSName(principal: target)
                acceptorCredential = try GSSCredential.acquire(name: name, usage: .accept,
                                                               store: GSSCredentialStore(keytab: targetKeytab))
            } catch {
                return Result(status: error.windowsStatus.code, detail: "target \(target): \(error)")
            }
            var onward = GSSInitiatorContext(target: name, credential: proxy)
            var destination = GSSAcceptorContext(credential: acceptorCredential)
            if let failure = Self.establish(&onward, &destination, stage: "S4U2Proxy → \(target)") { return failure }
        }
        return Result(status: nil, detail: "delegated to \(targets.joined(separator: ", "))")
    }

    /// The credential the source acts for the user with: MIT's proxy credential from the user's
    /// ticket to `host/<source>`, or (protocol transition) an S4U2Self credential.
    func evidence(source: GSSName, sourceCredential: GSSCredential) -> Swift.Result<GSSCredential, Result> {
        if let user = protocolTransitionFor {
            do {
                return .success(try sourceCredential.impersonate(GSSName(principal: user)))
            } catch {
                return .failure(Result(status: error.windowsStatus.code, detail: "S4U2Self for \(user): \(error)"))
            }
        }
        // The user, on the machine the move starts from, gets a ticket to host/<source>.
        let userCredential: GSSCredential
        do { userCredential = try GSSCredential.acquire(store: GSSCredentialStore(ccache: userCCache)) } catch {
            return .failure(Result(status: error.windowsStatus.code, detail: "user credentials: \(error)"))
        }
        var initiator = GSSInitiatorContext(target: source, credential: userCredential)
        var acceptor = GSSAcceptorContext(credential: sourceCredential)
        if let failure = Self.establish(&initiator, &acceptor, stage: "user → \(sourcePrincipal)") { return .failure(failure) }
        // Without a forwardable ticket MIT gives no proxy credential: nothing to delegate (A4).
        guard let proxy = acceptor.delegatedCredential else {
            return .failure(Result(status: WindowsStatus.noCredentials.code,
                                   detail: "\(sourcePrincipal) received no delegable credential (the user's ticket is not forwardable)"))
        }
        return .success(proxy)
    }

    /// Establishes a context in memory; nil on success.
    static func establish(_ initiator: inout GSSInitiatorContext, _ acceptor: inout GSSAcceptorContext,
                          stage: String) -> Result? {
        var input: [UInt8]? = nil
        do {
            for _ in 0..<10 {
                let step = try initiator.step(input)
                if let token = step.token { input = try acceptor.step(token).token }
                if step.isComplete && acceptor.isComplete { return nil }
            }
        } catch {
            return Result(status: error.windowsStatus.code, detail: "\(stage): \(error)")
        }
        return Result(status: WindowsStatus.invalidToken.code, detail: "\(stage): establishment did not finish")
    }
}
