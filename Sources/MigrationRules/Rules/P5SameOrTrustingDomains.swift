import Directory
import WindowsStatus

/// Rule P5: source and destination (and the user) must be in the same domain or in domains that
/// trust each other; trusts are direct (not transitive). Otherwise the source cannot authenticate.
enum P5SameOrTrustingDomains {
    static func check(_ ctx: MoveContext) -> MigrationFailure? {
        let dir = ctx.directory
        let s = ctx.source.domain, d = ctx.destination.domain, u = ctx.user.domain
        if s == d && d == u { return nil }
        var missing: [(String, String)] = []
        for (a, b) in [(d, s), (s, d), (s, u), (d, u)] where !dir.trusts(a, b) && !missing.contains(where: { $0 == (a, b) }) {
            missing.append((a, b))
        }
        if missing.isEmpty { return nil }
        let status = WindowsStatus.noAuthenticatingAuthority
        let text = missing.map { "\($0.0) does not trust \($0.1)" }.joined(separator: "; ")
        var fixes: [String] = []
        var done: Set<String> = []
        for (a, b) in missing {
            let pair = [a, b].sorted().joined(separator: "|")
            guard done.insert(pair).inserted else { continue }
            fixes.append("netdom trust \(a) /domain:\(b) /add /twoway /UserD:\(b)\\Administrator /PasswordD:* /UserO:\(a)\\Administrator /PasswordO:*")
        }
        return ctx.failure(.p5, status, stage: .source, message: ctx.connectionMessage(status),
                           explanation: "\(ctx.source.name) (\(s)) and \(ctx.destination.name) (\(d)) must be in the same domain or in domains that trust each other, and both must trust the user's domain (\(u)): \(text).",
                           fixes: fixes)
    }
}
