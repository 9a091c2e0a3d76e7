import MigrationRules

/// The audit as text, JSON and HTML.
extension ClusterAudit {
    /// Hosts up to which the text report draws the pair matrices.
    public static let textMatrixLimit = 24
    /// Hosts up to which the HTML report draws the pair matrices (beyond: summaries only).
    public static let htmlMatrixLimit = 200
    /// Accounts (and entries per account) the text and HTML fix lists show before summarising.
    public static let textFixLimit = 20

    private var startedWhere: String {
        options.from.map { "started from \(options.signedOn.rawValue) sign-on on \($0)" }
            ?? "started from a \(options.signedOn.rawValue) sign-on on each source"
    }

    // MARK: Text

    public var text: String {
        let n = hosts.count
        var out = "Audit of \(n) Hyper-V host\(n == 1 ? "" : "s") for \(userDisplay), moves \(startedWhere)\n"
        out += "\(n * max(n - 1, 0)) ordered pairs × 4 (live/storage × Kerberos/CredSSP) = \(decisions) verdicts\n\n"
        for v in Variant.allCases {
            let s = summary(v)
            let total = n * max(n - 1, 0)
            out += "\(v): \(s.works) of \(total) work"
            if !s.byRule.isEmpty {
                out += "; blocked first by " + s.byRule.map { "\($0.0) (\($0.0.title)) \($0.1)" }.joined(separator: ", ")
            }
            out += "\n"
        }
        if n >= 2 && n <= Self.textMatrixLimit {
            let width = max(hosts.map(\.count).max() ?? 0, 6)
            for v in Variant.allCases {
                out += "\n\(v) — rows: source, columns: destination; ok = works, else the first rule that blocks\n"
                out += pad("", width + 3) + (0..<n).map { pad("\($0 + 1)", 4) }.joined() + "\n"
                for s in 0..<n {
                    out += pad("\(s + 1) \(hosts[s])", width + 3) + (0..<n).map { d -> String in
                        guard let verdict = verdict(v, source: s, destination: d) else { return pad("-", 4) }
                        return pad(verdict.first?.rawValue ?? "ok", 4)
                    }.joined() + "\n"
                }
            }
        }
        out += fixesText
        return out
    }

    /// The cluster's fix list, deduplicated.
    public var fixesText: String {
        var out = ""
        if delegationFixes.isEmpty && ruleFixes.isEmpty { return "\nEvery move works; nothing to fix.\n" }
        if !delegationFixes.isEmpty {
            out += "\nDelegation to add (A2/A2b, Kerberos), \(delegationFixes.count) account\(delegationFixes.count == 1 ? "" : "s"):\n"
            let total = delegationFixes.reduce(0) { $0 + $1.add.count }
            let shown = delegationFixes.prefix(Self.textFixLimit)
            for f in shown {
                out += "  \(f.account)$ (\(f.domain)): " + (f.add.isEmpty ? "" : "add \(f.add.count) entr\(f.add.count == 1 ? "y" : "ies")")
                if f.protocolTransition { out += (f.add.isEmpty ? "" : "; ") + "needs \"Use any authentication protocol\"" }
                out += "\n"
                for a in f.add.prefix(Self.textFixLimit) { out += "      \(a)\n" }
                if f.add.count > Self.textFixLimit { out += "      … and \(f.add.count - Self.textFixLimit) more (--json lists every entry)\n" }
            }
            if delegationFixes.count > shown.count {
                out += "  … and \(delegationFixes.count - shown.count) more accounts (\(total) entries in all; --json lists them)\n"
            }
            if total <= Self.textFixLimit * Self.textFixLimit {
                out += "  Commands:\n"
                for c in delegationCommands { out += "    \(c)\n" }
            } else {
                out += "  Commands: \(total) entries are too many to print; --json has them as delegationCommands.\n"
            }
        }
        for f in ruleFixes {
            out += "\n\(f.rule) (\(f.rule.title)) blocks \(f.blocked) verdict\(f.blocked == 1 ? "" : "s")"
            out += f.hosts.isEmpty ? ":\n" : " (e.g. \(f.hosts.joined(separator: ", "))):\n"
            for fix in f.fixes { out += "  - \(fix)\n" }
        }
        return out
    }

    private func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count)
    }

    // MARK: JSON

    /// The whole audit as JSON (written directly: a 1,000-host audit has 4,000,000 verdicts).
    public var json: String {
        var out = "{\n"
        out += "  \"user\": \(Self.quote(userDisplay)),\n"
        out += "  \"signedOn\": \(Self.quote(options.signedOn.rawValue)),\n"
        out += "  \"from\": \(options.from.map(Self.quote) ?? "null"),\n"
        out += "  \"hosts\": [" + hosts.map(Self.quote).joined(separator: ", ") + "],\n"
        out += "  \"summary\": {\n"
        out += Variant.allCases.map { v -> String in
            let s = summary(v)
            return "    \(Self.quote(v.key)): {\"works\": \(s.works), \"blockedFirstBy\": {" +
                s.byRule.map { "\(Self.quote($0.0.rawValue)): \($0.1)" }.joined(separator: ", ") + "}}"
        }.joined(separator: ",\n") + "\n  },\n"
        out += "  \"pairs\": ["
        var firstPair = true
        let n = hosts.count
        for s in 0..<n {
            for d in 0..<n where d != s {
                out += firstPair ? "\n" : ",\n"
                firstPair = false
                out += "    {\"source\": \(Self.quote(hosts[s])), \"destination\": \(Self.quote(hosts[d]))"
                for v in Variant.allCases {
                    guard let verdict = verdict(v, source: s, destination: d) else { continue }
                    out += ", \(Self.quote(v.key)): "
                    if verdict.first == nil {
                        out += "{\"works\": true}"
                    } else {
                        out += "{\"works\": false, \"rules\": [" + verdict.all.map { Self.quote($0.rawValue) }.joined(separator: ", ") + "]}"
                    }
                }
                out += "}"
            }
        }
        out += firstPair ? "],\n" : "\n  ],\n"
        out += "  \"delegation\": [" + delegationFixes.map { f in
            "\n    {\"account\": \(Self.quote(f.account + "$")), \"domain\": \(Self.quote(f.domain)), \"add\": [" +
                f.add.map(Self.quote).joined(separator: ", ") + "], \"protocolTransition\": \(f.protocolTransition), \"verdicts\": \(f.pairs)}"
        }.joined(separator: ",") + (delegationFixes.isEmpty ? "],\n" : "\n  ],\n")
        out += "  \"delegationCommands\": [" + delegationCommands.map(Self.quote).joined(separator: ", ") + "],\n"
        out += "  \"fixes\": [" + ruleFixes.map { f in
            "\n    {\"rule\": \(Self.quote(f.rule.rawValue)), \"title\": \(Self.quote(f.rule.title)), \"verdicts\": \(f.blocked), \"hosts\": [" +
                f.hosts.map(Self.quote).joined(separator: ", ") + "], \"fixes\": [" + f.fixes.map(Self.quote).joined(separator: ", ") + "]}"
        }.joined(separator: ",") + (ruleFixes.isEmpty ? "]\n" : "\n  ]\n")
        out += "}\n"
        return out
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }

    // MARK: HTML

    /// Colour per first-blocking rule; green when the move works.
    static func colour(_ rule: RuleID?) -> String {
        switch rule {
        case nil: return "#2e9d4f"
        case .a2?: return "#d64541"
        case .a2b?: return "#e8743b"
        case .a3?: return "#f2b134"
        case .a1?, .a6?: return "#8e44ad"
        case .a4?: return "#c0392b"
        case .a5?: return "#8d6e63"
        case .a7?: return "#b03a91"
        case .p1?: return "#2d6cdf"
        case .p3?: return "#7f8c8d"
        case .p4?: return "#34495e"
        case .p5?: return "#16a085"
        case .n1?: return "#00a3c4"
        default: return "#555555"
        }
    }

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }

    /// A self-contained HTML page: per variant a summary and the source × destination matrix
    /// (one coloured cell per pair, its rules in the hover title), then the fix list.
    public var html: String {
        let n = hosts.count
        var out = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>MigrationAuth audit: \(Self.escape(userDisplay))</title>
        <style>
        body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222}
        h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 6px} .sub{color:#555;margin:0 0 12px}
        .grid{display:flex;flex-wrap:wrap;gap:28px}
        table.m{border-collapse:separate;border-spacing:2px;font-size:12px}
        table.m th{font-weight:600;padding:2px 4px;white-space:nowrap}
        table.m th.col{writing-mode:vertical-rl;transform:rotate(180deg);text-align:left;height:auto}
        table.m td{width:18px;height:18px;border-radius:3px;padding:0;text-align:center;color:#fff;font-size:9px;font-weight:700}
        table.m td.self{background:#eee}
        .legend span{display:inline-block;margin:0 14px 6px 0;font-size:13px}
        .legend i{display:inline-block;width:14px;height:14px;border-radius:3px;vertical-align:-2px;margin-right:5px}
        .stats{font-size:13px;margin:4px 0 8px} code,pre{font-family:ui-monospace,Menlo,monospace;font-size:12px}
        pre{background:#f6f6f6;padding:10px;border-radius:6px;white-space:pre-wrap}
        .fix{margin:8px 0 14px} .rule{font-weight:600}
        </style></head><body>
        <h1>Live-migration audit: \(n) Hyper-V host\(n == 1 ? "" : "s")</h1>
        <p class="sub">User <b>\(Self.escape(userDisplay))</b>, moves \(Self.escape(startedWhere)); \(decisions) verdicts
        (every ordered pair, live and storage, Kerberos and CredSSP). Rows are sources, columns destinations; hover a cell for its rules.</p>

        """
        var used: [RuleID] = []
        for v in Variant.allCases { for (r, _) in summary(v).byRule where !used.contains(r) { used.append(r) } }
        out += "<div class=\"legend\"><span><i style=\"background:\(Self.colour(nil))\"></i>works</span>"
        for r in used.sorted() {
            out += "<span><i style=\"background:\(Self.colour(r))\"></i>\(r.rawValue) \(Self.escape(r.title))</span>"
        }
        out += "</div>\n<div class=\"grid\">\n"
        for v in Variant.allCases {
            let s = summary(v)
            let total = n * max(n - 1, 0)
            out += "<section><h2>\(Self.escape(v.description))</h2><div class=\"stats\">\(s.works) of \(total) work"
            if !s.byRule.isEmpty { out += " · blocked first by " + s.byRule.map { "\($0.0.rawValue) \($0.1)" }.joined(separator: ", ") }
            out += "</div>\n"
            if n >= 2 && n <= Self.htmlMatrixLimit {
                out += "<table class=\"m\"><tr><th></th>"
                for d in hosts { out += "<th class=\"col\">\(Self.escape(d))</th>" }
                out += "</tr>\n"
                for si in 0..<n {
                    out += "<tr><th style=\"text-align:right\">\(Self.escape(hosts[si]))</th>"
                    for di in 0..<n {
                        guard let verdict = verdict(v, source: si, destination: di) else {
                            out += "<td class=\"self\" title=\"\(Self.escape(hosts[si])) (same host)\"></td>"
                            continue
                        }
                        let title: String
                        if verdict.first == nil {
                            title = "\(hosts[si]) → \(hosts[di]): works"
                        } else {
                            title = "\(hosts[si]) → \(hosts[di]): blocked by " + verdict.all.map { "\($0.rawValue) (\($0.title))" }.joined(separator: ", ")
                        }
                        let label = n <= 40 ? (verdict.first.map { Self.shortLabel($0) } ?? "") : ""
                        out += "<td style=\"background:\(Self.colour(verdict.first))\" title=\"\(Self.escape(title))\">\(label)</td>"
                    }
                    out += "</tr>\n"
                }
                out += "</table>\n"
            } else if n > Self.htmlMatrixLimit {
                out += "<p class=\"stats\">\(n) hosts: the matrix is left out beyond \(Self.htmlMatrixLimit) hosts; see --json for every pair.</p>\n"
            }
            out += "</section>\n"
        }
        out += "</div>\n<h2>What to change</h2>\n"
        if delegationFixes.isEmpty && ruleFixes.isEmpty { out += "<p>Every move works; nothing to fix.</p>\n" }
        if !delegationFixes.isEmpty {
            out += "<div class=\"fix\"><span class=\"rule\">A2/A2b delegation</span> — \(delegationFixes.count) computer account\(delegationFixes.count == 1 ? "" : "s"):<ul>\n"
            for f in delegationFixes.prefix(Self.htmlMatrixLimit) {
                // Grouped by service class: the short-name entries name the destinations.
                let targets = f.targets
                var parts: [String] = []
                if !targets.migration.isEmpty { parts.append("migration service → " + Self.escape(targets.migration.joined(separator: ", "))) }
                if !targets.cifs.isEmpty { parts.append("cifs → " + Self.escape(targets.cifs.joined(separator: ", "))) }
                if f.protocolTransition { parts.append("“Use any authentication protocol”") }
                out += "<li><code>\(Self.escape(f.account))$</code> (\(f.add.count) entr\(f.add.count == 1 ? "y" : "ies"), FQDN and short name): " + parts.joined(separator: "; ") + "</li>\n"
            }
            if delegationFixes.count > Self.htmlMatrixLimit { out += "<li>… and \(delegationFixes.count - Self.htmlMatrixLimit) more accounts (see --json)</li>\n" }
            let total = delegationFixes.reduce(0) { $0 + $1.add.count }
            out += "</ul>"
            if total <= Self.textFixLimit * Self.textFixLimit {
                out += "<pre>" + delegationCommands.map(Self.escape).joined(separator: "\n") + "</pre>"
            }
            out += "</div>\n"
        }
        for f in ruleFixes {
            out += "<div class=\"fix\"><span class=\"rule\" style=\"color:\(Self.colour(f.rule))\">\(f.rule.rawValue) \(Self.escape(f.rule.title))</span> — blocks \(f.blocked) verdict\(f.blocked == 1 ? "" : "s")"
            if !f.hosts.isEmpty { out += " (e.g. \(Self.escape(f.hosts.joined(separator: ", "))))" }
            out += "<pre>" + f.fixes.map(Self.escape).joined(separator: "\n") + "</pre></div>\n"
        }
        out += "</body></html>\n"
        return out
    }

    /// Two characters for a cell.
    static func shortLabel(_ r: RuleID) -> String { r == .a2b ? "2b" : r.rawValue }
}

extension ClusterAudit.DelegationFix {
    /// The destinations of the entries to add, per service class (from the short-name entries).
    public var targets: (migration: [String], cifs: [String]) {
        var migration: [String] = [], cifs: [String] = []
        for entry in add {
            guard let slash = entry.lastIndex(of: "/") else { continue }
            let host = entry[entry.index(after: slash)...]
            guard !host.contains(".") else { continue }
            if entry.lowercased().hasPrefix("cifs/") { cifs.append(String(host)) } else { migration.append(String(host)) }
        }
        return (migration, cifs)
    }
}
