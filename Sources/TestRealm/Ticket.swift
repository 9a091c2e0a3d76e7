import Foundation

/// One ticket in a credential cache, as `klist -f` shows it.
public struct Ticket: Sendable, Hashable {
    /// Server principal, e.g. `krbtgt/MIGRATION.TEST@MIGRATION.TEST`.
    public var server: String
    public var start: Date
    public var end: Date
    public var renewUntil: Date?
    /// klist's flag letters, e.g. `"FRIA"` (F forwardable, f forwarded, R renewable, I initial,
    /// A pre-authenticated, O ok-as-delegate, T transit-policy-checked).
    public var flags: String

    public var isForwardable: Bool { flags.contains("F") }
    public var lifetime: TimeInterval { end.timeIntervalSince(start) }

    /// Parses `klist -f` output produced with `TZ=UTC` and `LC_ALL=C`.
    static func parse(klist output: String) -> [Ticket] {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "MM/dd/yy HH:mm:ss"
        var tickets: [Ticket] = []
        for line in output.split(separator: "\n").map(String.init) {
            if line.hasPrefix("\t") || line.hasPrefix(" ") {
                guard !tickets.isEmpty else { continue }
                let text = line.trimmingCharacters(in: .whitespaces)
                if let range = text.range(of: "renew until ") {
                    let date = text[range.upperBound...].prefix(17)
                    tickets[tickets.count - 1].renewUntil = formatter.date(from: String(date))
                }
                if let range = text.range(of: "Flags: ") {
                    tickets[tickets.count - 1].flags = String(text[range.upperBound...].prefix { $0.isLetter })
                }
                continue
            }
            // "MM/dd/yy HH:mm:ss  MM/dd/yy HH:mm:ss  server"
            let words = line.split(separator: " ", omittingEmptySubsequences: true)
            guard words.count >= 5,
                  let start = formatter.date(from: "\(words[0]) \(words[1])"),
                  let end = formatter.date(from: "\(words[2]) \(words[3])") else { continue }
            let server = words[4...].joined(separator: " ")
            tickets.append(Ticket(server: server, start: start, end: end, renewUntil: nil, flags: ""))
        }
        return tickets
    }
}

/// How to reach the private slapd of an LDAP-backed realm (to read or write other attributes).
public struct LDAPConnection: Sendable, Hashable {
    /// `ldap://127.0.0.1:PORT/`.
    public var uri: String
    /// `ldapi://…` socket inside the realm directory.
    public var socketURI: String
    /// Root DN (simple bind) and its password.
    public var rootDN: String
    public var rootPassword: String
    /// Directory suffix (`dc=testrealm`).
    public var suffix: String
    /// `cn=krbContainer,<suffix>`; principals live under `cn=<REALM>,` this.
    public var kerberosContainerDN: String
}
