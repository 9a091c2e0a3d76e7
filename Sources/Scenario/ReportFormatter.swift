import MigrationRules
/// Human-readable text for scenario results, outcomes and diagnoses (what `migauth` prints).
public enum ReportFormatter {
    /// Every scenario with ✓/✗ per step, expected vs actual on mismatches, and a summary line.
    public static func text(_ batch: ScenarioBatchResult, verbose: Bool = false) -> String {
        var out = ""
        for r in batch.results {
            out += "\(r.passed ? "✓" : "✗") \(r.file) — \(r.name)"
            if !r.rules.isEmpty { out += " [\(r.rules.joined(separator: ", "))]" }
            out += "\n"
            for s in r.steps { out += text(s, verbose: verbose) }
        }
        for e in batch.errors { out += "✗ \(e)\n" }
        out += summaryLine(batch) + "\n"
        return out
    }

    /// `PASS: 21 scenarios, 118 steps, 0 mismatches; rules exercised: …` (or FAIL).
    public static func summaryLine(_ batch: ScenarioBatchResult) -> String {
        var s = batch.passed ? "PASS" : "FAIL"
        s += ": \(batch.results.count) scenario\(batch.results.count == 1 ? "" : "s"), \(batch.stepCount) steps, "
        s += "\(batch.mismatchCount) mismatch\(batch.mismatchCount == 1 ? "" : "es")"
        let failed = batch.results.filter { !$0.passed }.count
        if failed > 0 { s += " in \(failed) scenario\(failed == 1 ? "" : "s")" }
        if !batch.errors.isEmpty { s += ", \(batch.errors.count) invalid file\(batch.errors.count == 1 ? "" : "s")" }
        let rules = batch.rulesExercised
        if !rules.isEmpty { s += "; rules exercised: \(rules.joined(separator: " "))" }
        return s
    }

    static func text(_ s: ScenarioStepResult, verbose: Bool) -> String {
        let mark = s.matched ? "✓" : "✗"
        let number = String(repeating: " ", count: max(0, 3 - String(s.index).count)) + String(s.index)
        var out = "  \(mark)\(number) \(s.label.map { "\($0): " } ?? "")\(s.action) → \(brief(s.actual))"
        let rules = Set(s.actual.rulesExercised + s.actual.parts.flatMap(\.rulesExercised)).sorted(by: Rules.order)
        if !rules.isEmpty { out += "  [\(rules.joined(separator: " "))]" }
        out += "\n"
        if !s.matched {
            if let line = s.line { out += "       at line \(line)\n" }
            out += "       expected: \(s.expected.map(\.description).joined(separator: " | "))\n"
            out += "       actual:   \(s.actual.parts.isEmpty ? describe(s.actual) : s.actual.parts.map(describe).joined(separator: " | "))\n"
            for m in s.mismatches { out += "         - \(m)\n" }
            if let message = s.actual.message { out += indent(message, by: 7) }
        } else if verbose {
            for p in s.actual.parts.isEmpty ? [s.actual] : s.actual.parts where p.result == .error {
                out += indent(text(p), by: 7)
            }
        }
        return out
    }

    static func brief(_ o: ActionOutcome) -> String {
        if !o.parts.isEmpty { return o.parts.map(brief).joined(separator: ", ") }
        var s = o.result.rawValue
        if let st = o.status { s += " \(st.hex)" }
        if let r = o.rule { s += " (\(r))" }
        if !o.warnings.isEmpty { s += " ⚠ \(o.warnings.map(\.rule).joined(separator: ","))" }
        return s
    }

    static func describe(_ o: ActionOutcome) -> String {
        var parts = [o.result.rawValue]
        if let st = o.status { parts.append("\(st.hex) (\(st.symbol))") }
        if let r = o.rule { parts.append("rule \(r)") }
        if let s = o.stage { parts.append("at \(s)") }
        if !o.warnings.isEmpty { parts.append("warnings \(o.warnings.map(\.rule).joined(separator: ","))") }
        return parts.joined(separator: ", ")
    }

    /// An outcome as `migauth` prints it after a command: Hyper-V's message exactly when there is
    /// one, then the rule, stage, explanation and fix; warnings last.
    public static func text(_ o: ActionOutcome, for action: ScenarioAction? = nil) -> String {
        if !o.parts.isEmpty {
            return o.parts.enumerated().map { i, p in "move \(i + 1): " + text(p) }.joined()
        }
        var out = ""
        switch o.result {
        case .success: out += "OK" + (action.map { ": \($0.summary)" } ?? "") + "\n"
        case .queued: out += "Queued" + (action.map { ": \($0.summary)" } ?? "") + "\n"
        case .error:
            if let m = o.message { out += m + "\n" }
            else if let s = o.status { out += "\(s.windowsMessage)\n" }
            else { out += "Failed\n" }
        }
        if let s = o.status, o.result == .error { out += "status:      \(s.hex) \(s.symbol)\n" }
        if let r = o.rule { out += "rule:        \(r)\n" }
        if let s = o.stage { out += "stage:       \(s)\n" }
        if let e = o.explanation { out += "explanation: \(e)\n" }
        for (i, f) in o.fixes.enumerated() { out += (i == 0 ? "fix:         " : "             ") + f + "\n" }
        for w in o.warnings { out += "warning (\(w.rule)): \(w.text)\n" }
        return out
    }

    /// A diagnosis: the verdict, the outcome a move would have, then every blocking rule with its fix.
    public static func text(_ d: MoveDiagnosis) -> String {
        var out = "\(d.request.summary)\n"
        for a in d.assumptions { out += "assuming: \(a)\n" }
        if d.wouldSucceed {
            out += "Would \(d.outcome.result == .queued ? "be queued (N2) and then" : "") succeed.\n"
        } else {
            out += "Would fail. Move-VM would report:\n"
            out += indent(text(d.outcome), by: 2)
            out += "\(d.blockers.count) blocking rule\(d.blockers.count == 1 ? "" : "s"):\n"
            for (i, b) in d.blockers.enumerated() {
                out += "\(i + 1). \(b.rule ?? "?")"
                if let s = b.status { out += " — \(s.hex) \(s.symbol)" }
                if let st = b.stage { out += " at \(st)" }
                out += "\n"
                if let e = b.explanation { out += "   why: \(e)\n" }
                for (i, f) in b.fixes.enumerated() { out += (i == 0 ? "   fix: " : "        ") + f + "\n" }
            }
        }
        if let plan = d.plan { out += text(plan) }
        for w in d.warnings { out += "warning (\(w.rule)): \(w.text)\n" }
        return out
    }

    /// `Fix plan (checked in the simulator): 1. … ` or `Impossible while P4: …`.
    static func text(_ plan: FixPlan) -> String {
        if !plan.impossible.isEmpty {
            return plan.impossible.map { "Impossible while \($0.rule.rawValue): \($0.explanation)\n" }.joined()
        }
        guard plan.succeeds else { return "No fix plan found: \(plan.unresolved ?? "the fixes above do not make the move succeed in the simulator").\n" }
        var out = "Fix plan (\(plan.steps.count) step\(plan.steps.count == 1 ? "" : "s"), checked in the simulator):\n"
        for (i, s) in plan.steps.enumerated() {
            out += "\(i + 1). [\(s.rule.rawValue)] \(s.command)\n"
            if let samba = s.sambaTool { out += "   samba-tool: \(samba)\n" }
        }
        return out
    }

    static func indent(_ s: String, by n: Int) -> String {
        let pad = String(repeating: " ", count: n)
        return s.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.isEmpty }.map { pad + $0 + "\n" }.joined()
    }
}

extension MoveSpec {
    /// `Move-VM VM1 TestServer01 → TestServer02 by alice on TestServer01`.
    public var summary: String {
        var s = "\(kind.cmdlet) \(vm) \(source.map { "\($0) " } ?? "")→ \(destination) by \(user)"
        if let on = startedOn { s += " on \(on)" }
        if let a = address { s += " via \(a)" }
        return s
    }
}

extension ScenarioAction {
    /// One line describing the action.
    public var summary: String {
        switch self {
        case let .signOn(user, host, method, from):
            return "sign-on \(user) → \(host) (\(method.rawValue)\(from.map { " from \($0)" } ?? ""))"
        case let .signOff(user, host): return "sign-off \(user) from \(host)"
        case let .enableMigration(host): return "Enable-VMMigration \(host)"
        case let .disableMigration(host): return "Disable-VMMigration \(host)"
        case let .setHost(host, c):
            var parts: [String] = []
            if let v = c.maximumVirtualMachineMigrations { parts.append("-MaximumVirtualMachineMigrations \(v)") }
            if let v = c.useAnyNetworkForMigration { parts.append("-UseAnyNetworkForMigration $\(v)") }
            if let v = c.authenticationType { parts.append("-VirtualMachineMigrationAuthenticationType \(v.rawValue)") }
            if let v = c.performanceOption { parts.append("-VirtualMachineMigrationPerformanceOption \(v.rawValue)") }
            return "Set-VMHost \(host) \(parts.joined(separator: " "))"
        case let .addMigrationNetwork(host, subnet, _): return "Add-VMMigrationNetwork \(host) \(subnet)"
        case let .removeMigrationNetwork(host, subnet): return "Remove-VMMigrationNetwork \(host) \(subnet)"
        case let .setMigrationNetwork(host, subnet, new, priority):
            return "Set-VMMigrationNetwork \(host) \(subnet)\(new.map { " -NewSubnet \($0)" } ?? "")\(priority.map { " -Priority \($0)" } ?? "")"
        case let .newVM(host, name): return "New-VM \(name) on \(host)"
        case let .localGroupMember(host, group, member, add):
            return "\(add ? "Add" : "Remove")-LocalGroupMember -Group '\(group.rawValue)' -Member \(member) on \(host)"
        case let .delegation(c):
            let verb = c.operation == .add ? "-Add" : "-Remove"
            return "Set-ADComputer \(c.computer) \(verb) msDS-AllowedToDelegateTo=\(c.services.joined(separator: ", "))\(c.protocolChoice.map { " (\($0.rawValue))" } ?? "") on \(c.dc) as \(c.actingUser)"
        case let .replicate(from, to):
            if from == nil && to == nil { return "repadmin /syncall" }
            return "repadmin /replicate \(to ?? "*") \(from ?? "*")"
        case let .advanceClock(seconds): return "advance clock \(seconds)s"
        case let .purgeTickets(host): return "klist purge on \(host)"
        case let .restart(host): return "Restart-Computer \(host)"
        case let .move(m): return m.summary
        case let .moves(list): return list.map(\.summary).joined(separator: " ∥ ")
        case let .domainGroupMember(group, member, add, dc):
            return "\(add ? "Add" : "Remove")-ADGroupMember -Identity '\(group)' -Members \(member)\(dc.map { " -Server \($0)" } ?? "")"
        case let .setSensitive(user, sensitive, dc):
            return "Set-ADAccountControl \(user) -AccountNotDelegated $\(sensitive)\(dc.map { " -Server \($0)" } ?? "")"
        case let .setCredentialGuard(host, enabled): return "turn Credential Guard \(enabled ? "on" : "off") on \(host)"
        }
    }
}
