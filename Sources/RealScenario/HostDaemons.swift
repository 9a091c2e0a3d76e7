import Foundation
import RealmProvisioning
import TestRealm

/// One `migauth serve --config host.json` process per Hyper-V host of the realm, started with the
/// realm's environment under a parent-death signal (`TestRealm.launch`).
actor HostDaemons {
    struct Daemon: Sendable {
        let key: String
        let process: ChildProcess
        let output: String
    }

    private var daemons: [String: Daemon] = [:]
    /// Realms by domain; a host's daemon runs with its domain's (``fallback`` for others).
    private let realms: [String: TestRealm]
    private let fallback: TestRealm
    private let layout: HostLayout
    private let executable: String

    private init(realms: [String: TestRealm], fallback: TestRealm, layout: HostLayout, executable: String) {
        self.realms = realms
        self.fallback = fallback
        self.layout = layout
        self.executable = executable
    }

    /// Starts a daemon for each entry in `keys` and waits for its `READY` line. Each runs with its
    /// host's realm environment and, with several realms, its host's krb5.conf.
    static func start(realms: [String: TestRealm], fallback: TestRealm, layout: HostLayout, keys: [String],
                      executable: String) async throws -> HostDaemons {
        let daemons = HostDaemons(realms: realms, fallback: fallback, layout: layout, executable: executable)
        do {
            for key in keys { try await daemons.launch(key) }
        } catch {
            await daemons.stop()
            throw error
        }
        return daemons
    }

    private func launch(_ key: String) async throws {
        guard let e = layout.entry(key) else { return }
        let output = e.directory + "/serve.out"
        try? FileManager.default.removeItem(atPath: output)
        let realm = realms[e.domain] ?? fallback
        let process = try await realm.launch(executable, ["serve", "--config", e.configuration], outputPath: output,
                                       extraEnvironment: e.krb5Config.map { ["KRB5_CONFIG": $0] } ?? [:])
        let daemon = Daemon(key: key, process: process, output: output)
        daemons[key] = daemon
        try await Self.wait(for: daemon, lines: "READY", count: 1)
    }

    /// `Restart-Computer`: the host's daemon stops (SIGTERM) and starts again from its `host.json`.
    func restart(_ key: String) async throws {
        guard let d = daemons.removeValue(forKey: key) else { return }
        await d.process.stop(grace: .seconds(2))
        try await launch(key)
    }

    /// SIGHUP to the daemons of `keys` (their `host.json` changed); waits for each to reload.
    func reload(_ keys: [String]) async throws {
        for key in keys {
            guard let d = daemons[key] else { continue }
            let before = Self.count(d, "RELOAD")
            d.process.send(SIGHUP)
            try await Self.wait(for: d, lines: "RELOAD", count: before + 1)
        }
    }

    /// SIGSTOP (`true`) or SIGCONT (`false`) to the daemons of `keys`: connections made meanwhile
    /// wait in the kernel's backlog and are accepted together on resume.
    func pause(_ keys: [String], _ paused: Bool) {
        for key in keys { daemons[key]?.process.send(paused ? SIGSTOP : SIGCONT) }
    }

    func stop() async {
        for d in daemons.values { await d.process.stop(grace: .seconds(2)) }
        daemons = [:]
    }

    static func count(_ d: Daemon, _ prefix: String) -> Int {
        let text = (try? String(contentsOfFile: d.output, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").filter { $0.hasPrefix(prefix) }.count
    }

    /// Polls the daemon's output until `count` lines start with `prefix` (15 s at most).
    static func wait(for d: Daemon, lines prefix: String, count: Int) async throws {
        for _ in 0..<300 {
            if Self.count(d, prefix) >= count { return }
            if !d.process.isRunning { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let text = (try? String(contentsOfFile: d.output, encoding: .utf8)) ?? ""
        throw TestRealmError.launchFailed(executable: "migauth serve (\(d.key))",
                                          reason: "no \(prefix) line; output: \(text.suffix(600))")
    }
}
