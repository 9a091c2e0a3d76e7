import ArgumentParser
import ClusterAudit
import Foundation
import Hosts
import MigrationRules
import Scenario

/// `migauth audit`: every ordered pair of a cluster's Hyper-V hosts, and the fixes for all of them.
struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Audit every ordered pair of Hyper-V hosts: live and storage, Kerberos and CredSSP, and the fixes.",
        discussion: """
        The world comes from --scenario (optionally after --after-step N of its steps), from --ldif (the \
        directory, with a host for each computer account), from a live DC with --ldap (SASL GSSAPI, your ticket), or from the persistent environment. For each \
        ordered pair (S, D) of the audited hosts it answers: could --user, signed on to S (or to --from), \
        move a VM from S to D if both used Kerberos / CredSSP? With --ldif, hosts are taken as having live \
        migration enabled (a directory does not hold those settings), so the directory's rules remain; \
        --as-configured keeps the settings as they are. Prints a summary, the pair matrix for small \
        clusters and the deduplicated fix list (delegation entries per account); --json prints every \
        verdict; --html FILE writes a report with the colour-coded matrix. Exit 0 when every move works, \
        1 otherwise, 2 on bad input.
        """)
    @OptionGroup var source: WorldSourceOptions
    @Option(help: "The user starting the moves (CONTOSO\\alice, alice@contoso.com).") var user: String
    @Option(name: .customLong("signed-on"), help: "How the user is signed on: console, rdp, remote-shell-kerberos, remote-shell-credssp.")
    var signedOn: SignOnKind = .console
    @Option(help: "The machine every move is started on (default: each move's source).") var from: String?
    @Option(help: "Comma-separated hosts to audit (default: every Hyper-V host).") var hosts: String?
    @Flag(name: .customLong("as-configured"), help: "With --ldif or --ldap: keep the hosts' default settings (migration off).")
    var asConfigured = false
    @Flag(help: "Print the whole audit as JSON.") var json = false
    @Option(help: "Also write an HTML report with the host-pair matrix to this file.") var html: String?

    func run() throws {
        let environment = try source.load()
        let names = hosts.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }
        let options = ClusterAudit.Options(user: user, signedOn: signedOn, from: from, hosts: names,
                                           assumeHostsReady: source.fromDirectory && !asConfigured)
        let audit: ClusterAudit
        do { audit = try ClusterAudit.run(environment.world, options: options) } catch {
            throw CLIError("\(error.message) [\(error.status.symbol) \(error.status.hex)]")
        }
        if let html {
            do { try audit.html.write(toFile: html, atomically: true, encoding: .utf8) } catch {
                throw CLIError("cannot write \(html): \(error.localizedDescription)")
            }
        }
        print(json ? audit.json : audit.text, terminator: "")
        if audit.blockedVerdicts > 0 { throw ExitCode(1) }
    }
}
