import Foundation
import Scenario
import WindowsStatus

/// One step of a real run: the simulated outcome, and the real one where it could run for real.
package struct RealStepReport: Sendable, Codable, Hashable {
    package enum Mode: String, Sendable, Codable, Hashable {
        /// Run against real processes and compared with the simulation.
        case compared
        /// Decided by the simulation alone (``reason`` says why).
        case simulatedOnly = "simulated-only"
        /// A set-up step (sign-on, settings, directory, tickets) reproduced on the real hosts and
        /// realm; nothing to compare.
        case applied
    }

    package var index: Int
    package var label: String?
    package var action: String
    package var mode: Mode
    package var reason: String?
    package var simulated: OutcomeSummary
    package var real: OutcomeSummary?
    /// Differences between SIM and REAL (empty when they agree).
    package var mismatches: [String]
    /// What the file's `expect` says (one per move of a `moves` step).
    package var expected: [String]
    /// Where the step's outcome differs from the file's `expect` (empty when it is met): the REAL
    /// outcome for a compared step, the simulated one for any other step (its only outcome).
    package var unmetExpectations: [String]

    package init(index: Int, label: String?, action: String, mode: Mode, reason: String?, simulated: OutcomeSummary,
                real: OutcomeSummary?, mismatches: [String], expected: [String] = [], unmetExpectations: [String] = []) {
        self.index = index
        self.label = label
        self.action = action
        self.mode = mode
        self.reason = reason
        self.simulated = simulated
        self.real = real
        self.mismatches = mismatches
        self.expected = expected
        self.unmetExpectations = unmetExpectations
    }

    /// Which outcome the expectation was checked against.
    package var expectationCheckedAgainst: String { mode == .compared ? "REAL" : "SIM" }
}

/// The parts of an outcome that SIM and REAL must agree on.
package struct OutcomeSummary: Sendable, Codable, Hashable, CustomStringConvertible {
    package var result: String
    /// `0x8009030E`.
    package var status: String?
    /// The user-facing text (Hyper-V's two lines for a failed move).
    package var text: String?
    /// What the real side said beyond the text (MIT's message, the daemon's detail); not compared.
    package var detail: String?
    /// SIM: the rule that decided a failure and those the engine names with it (A6 behind A1);
    /// REAL: the rule the daemon's detail names (`… (rule A4)`), if any. Compared when both are known.
    package var rules: [String]?

    package init(result: String, status: String? = nil, text: String? = nil, detail: String? = nil, rules: [String]? = nil) {
        self.result = result
        self.status = status
        self.text = text
        self.detail = detail
        self.rules = rules ?? detail.flatMap(Self.namedRule).map { [$0] }
    }

    package init(_ outcome: ActionOutcome) {
        self.init(result: outcome.result.rawValue, status: outcome.status?.hex,
                  text: outcome.result == .error ? outcome.message : nil,
                  rules: outcome.result == .error ? outcome.rule.map { [$0] + outcome.relatedRules } : nil)
    }

    /// The last `(rule X)` in a daemon's detail.
    static func namedRule(_ detail: String) -> String? {
        detail.range(of: "rule [A-Z][0-9]+b?\\)", options: [.regularExpression, .backwards])
            .map { String(detail[$0].dropFirst(5).dropLast()) }
    }

    package var description: String { result + (status.map { " " + $0 } ?? "") }

    /// Where a failed move failed (`source` / `destination`), read from Hyper-V's first line.
    package var stage: String? {
        guard let first = text?.split(separator: "\n").first,
              let range = first.range(of: "failed at migration ") else { return nil }
        return first[range.upperBound...].trimmingCharacters(in: CharacterSet(charactersIn: ".")).lowercased()
    }

    /// Where this (real) outcome differs from the file's expectation: result, status, stage, exact
    /// text, and the rule when the real side names one. `simulatedRules` are the rules the model
    /// names with its deciding one (A6 behind A1), which a daemon may name instead. Warnings (S1)
    /// have no real counterpart and are not compared.
    package func unmet(_ e: Expectation, simulatedRules: [String]? = nil) -> [String] {
        var d: [String] = []
        if result != e.result.rawValue { d.append("result: expected \(e.result.rawValue), got \(result)") }
        if let s = e.status {
            let got = status.flatMap { UInt32($0.dropFirst(2), radix: 16) }
            if got != s.value { d.append("error: expected \(s), got \(status ?? "none")") }
        }
        if let s = e.stage, s == "source" || s == "destination", result == "error", stage != s {
            d.append("stage: expected \(s), got \(stage ?? "none")")
        }
        if let t = e.text, t != text { d.append("text: expected \"\(t)\", got \(text.map { "\"\($0)\"" } ?? "none")") }
        if let r = e.rule, let named = rules?.first, named != r {
            let related = simulatedRules ?? []
            if !(related.contains(r) && related.contains(named)) { d.append("rule: expected \(r), got \(named)") }
        }
        return d
    }


    /// Differences from `other` (result, status, exact text).
    package func differences(from real: OutcomeSummary) -> [String] {
        var d: [String] = []
        if result != real.result { d.append("result: SIM \(result), REAL \(real.result)") }
        if status != real.status { d.append("status: SIM \(status ?? "none"), REAL \(real.status ?? "none")") }
        if let t = text, let r = real.text, t != r { d.append("text: SIM \"\(t)\", REAL \"\(r)\"") }
        if let sim = rules, let named = real.rules?.first, !sim.contains(named) {
            d.append("rule: SIM \(sim.joined(separator: "/")), REAL \(named)")
        }
        return d
    }
}

/// One scenario run for real.
package struct RealScenarioReport: Sendable, Codable, Hashable {
    package var name: String
    package var file: String
    package var steps: [RealStepReport]
    /// Set when the real side could not be set up (the realm did not start, …).
    package var error: String?
    /// Seconds from the first realm's start until every realm, trust, host and daemon was up.
    package var setUpSeconds: Double?
    /// MIT realms started (one per domain of the world).
    package var realmCount: Int?
    /// Domain controllers started: each realm's own slapd + KDC and every replica (one per DC of the model).
    package var domainControllerCount: Int?

    package init(name: String, file: String, steps: [RealStepReport], error: String? = nil) {
        self.name = name
        self.file = file
        self.steps = steps
        self.error = error
    }

    package var compared: Int { steps.filter { $0.mode == .compared }.count }
    package var mismatches: Int { steps.filter { !$0.mismatches.isEmpty }.count }
    /// Steps whose outcome does not meet the file's `expect`.
    package var unmetExpectations: Int { steps.filter { !$0.unmetExpectations.isEmpty }.count }
    package var passed: Bool { mismatches == 0 && unmetExpectations == 0 && error == nil }
    package var simulatedOnly: [RealStepReport] { steps.filter { $0.mode == .simulatedOnly } }
}

/// Several scenarios run for real (what `migauth scenario run --real` prints).
package struct RealBatchReport: Sendable, Codable {
    package var scenarios: [RealScenarioReport]

    package init(scenarios: [RealScenarioReport]) { self.scenarios = scenarios }

    package var compared: Int { scenarios.reduce(0) { $0 + $1.compared } }
    package var mismatches: Int { scenarios.reduce(0) { $0 + $1.mismatches } }
    package var unmetExpectations: Int { scenarios.reduce(0) { $0 + $1.unmetExpectations } }
    package var errors: Int { scenarios.filter { $0.error != nil }.count }
    package var passed: Bool { mismatches == 0 && unmetExpectations == 0 && errors == 0 }

    /// `REAL: 3 scenarios, 12 steps compared, 0 mismatches, 0 expectations not met, 5 steps simulated
    /// only (CredSSP …: 3; …)`: mismatches are SIM ≠ REAL; expectations not met are steps whose
    /// outcome (REAL where it ran, else SIM) differs from the file's `expect`.
    package var summary: String {
        var reasons: [String: Int] = [:]
        for s in scenarios { for step in s.simulatedOnly { reasons[step.reason ?? "?", default: 0] += 1 } }
        let only = reasons.values.reduce(0, +)
        let why = reasons.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            .map { "\($0.key): \($0.value)" }.joined(separator: "; ")
        var line = "REAL: \(scenarios.count) scenarios, \(compared) steps compared, \(mismatches) mismatches, \(unmetExpectations) expectations not met, \(only) steps simulated only"
        if !why.isEmpty { line += " (\(why))" }
        if errors > 0 { line += ", \(errors) scenarios not set up" }
        let setUps = scenarios.compactMap(\.setUpSeconds)
        if !setUps.isEmpty {
            let multi = scenarios.filter { ($0.realmCount ?? 1) > 1 }.compactMap(\.setUpSeconds)
            line += String(format: "; set-up %.1f s in all", setUps.reduce(0, +))
            if !multi.isEmpty { line += String(format: ", %.1f s on average with several realms", multi.reduce(0, +) / Double(multi.count)) }
            let dcs = scenarios.filter { ($0.domainControllerCount ?? 1) > ($0.realmCount ?? 1) }.compactMap(\.setUpSeconds)
            if !dcs.isEmpty { line += String(format: ", %.1f s with several DCs", dcs.reduce(0, +) / Double(dcs.count)) }
        }
        return line
    }

    /// Per scenario and step: SIM vs REAL, then the summary line.
    package func text(verbose: Bool = false) -> String {
        var out = ""
        for s in scenarios {
            out += "\(s.passed ? "✓" : "✗") \(s.name) (\(s.file))\n"
            if verbose, let t = s.setUpSeconds {
                out += "    set up: \(s.realmCount ?? 1) realm(s), \(s.domainControllerCount ?? s.realmCount ?? 1) DC(s) (slapd + KDC each), "
                    + "hosts and daemons in \(String(format: "%.1f", t)) s\n"
            }
            if let e = s.error { out += "    not set up: \(e)\n" }
            for step in s.steps {
                let head = "  \(step.index). \(step.label.map { "\($0): " } ?? "")\(step.action)"
                switch step.mode {
                case .applied:
                    if verbose || !step.unmetExpectations.isEmpty { out += "\(head) — applied (SIM \(step.simulated))\n" }
                case .simulatedOnly:
                    out += "\(head) — SIM \(step.simulated) | simulated only: \(step.reason ?? "?")\n"
                case .compared:
                    let mark = step.mismatches.isEmpty ? "✓" : "✗"
                    out += "\(head) — SIM \(step.simulated) | REAL \(step.real?.description ?? "none") \(mark)"
                    out += step.reason.map { " (\($0))" } ?? ""
                    out += "\n"
                    for m in step.mismatches { out += "      \(m)\n" }
                    if verbose, let t = step.real?.text { out += t.split(separator: "\n").map { "      | \($0)\n" }.joined() }
                    if verbose, let d = step.real?.detail { out += "      detail: \(d)\n" }
                }
                for u in step.unmetExpectations {
                    out += "      ✗ expectation not met (\(step.expectationCheckedAgainst)): \(u) — the file expects \(step.expected.joined(separator: " | "))\n"
                }
            }
        }
        return out + summary + "\n"
    }

    package func jsonString() throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try e.encode(self), as: UTF8.self)
    }
}

extension ActionOutcome {
    /// Where this simulated outcome differs from the step's expectations (one per move of a `moves` step).
    package func unmet(_ expected: [Expectation]) -> [String] {
        if parts.isEmpty { return expected.first.map { differences(from: $0) } ?? [] }
        guard expected.count == parts.count else { return ["expected \(expected.count) outcomes, got \(parts.count)"] }
        return zip(expected, parts).enumerated().flatMap { i, pair in pair.1.differences(from: pair.0).map { "move \(i + 1): \($0)" } }
    }
}

extension [OutcomeSummary] {
    /// Several moves started together (N2) against one expectation each: which move waits is the
    /// daemon's choice, so the results are compared as multisets (result and status).
    package func unmet(_ expected: [Expectation]) -> [String] {
        let want = expected.map { e in e.result.rawValue + (e.status.map { " " + WindowsStatusHex.hex($0.value) } ?? "") }.sorted()
        let got = map { o in o.result + (o.status.map { " " + $0 } ?? "") }.sorted()
        // A status the file does not give matches any.
        var remaining = got
        var missing: [String] = []
        for w in want {
            if let i = remaining.firstIndex(where: { $0 == w || (!w.contains(" ") && $0.hasPrefix(w)) }) { remaining.remove(at: i) } else { missing.append(w) }
        }
        return missing.isEmpty ? [] : ["moves: expected [\(want.joined(separator: ", "))], got [\(got.joined(separator: ", "))]"]
    }
}

enum WindowsStatusHex {
    static func hex(_ code: UInt32) -> String { WindowsStatus(code: code, symbol: "", text: "").hex }
}
