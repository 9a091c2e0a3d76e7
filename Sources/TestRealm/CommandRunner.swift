import Foundation

/// Runs the realm's command-line tools with the realm's environment only (nothing inherited).
struct CommandRunner: Sendable {
    /// The complete environment of every child program.
    let environment: [String: String]
    /// Where captured output goes while a program runs.
    let scratchDirectory: String

    init(realmEnvironment: [String: String], scratchDirectory: String, traceFile: String?) {
        var environment = realmEnvironment
        environment["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"
        environment["LC_ALL"] = "C"
        environment["TZ"] = "UTC"
        if let traceFile { environment["KRB5_TRACE"] = traceFile }
        self.environment = environment
        self.scratchDirectory = scratchDirectory
    }

    /// Runs `executable` with `arguments` (argv entries, no shell), feeding `input` on stdin.
    /// Throws ``TestRealmError/commandFailed(_:)`` on a non-zero exit unless `check` is false.
    /// Arguments equal to one of `secrets` are shown as `<redacted>` in the result.
    @discardableResult
    func run(_ executable: String, _ arguments: [String], input: String? = nil,
             secrets: [String] = [], check: Bool = true,
             extraEnvironment: [String: String] = [:]) async throws -> CommandResult {
        let token = UUID().uuidString
        let outPath = scratchDirectory + "/\(token).out"
        let errPath = scratchDirectory + "/\(token).err"
        defer {
            try? FileManager.default.removeItem(atPath: outPath)
            try? FileManager.default.removeItem(atPath: errPath)
        }
        let child = try await ChildProcess(
            executable: executable, arguments: arguments,
            environment: environment.merging(extraEnvironment) { $1 },
            input: input.map { Data($0.utf8) }, inputDirectory: scratchDirectory,
            standardOutputPath: outPath, standardErrorPath: errPath)
        let (status, signaled) = await child.wait()
        let shown = [executable] + arguments.map { argument in
            secrets.contains(where: { !$0.isEmpty && argument.contains($0) }) ? "<redacted>" : argument
        }
        let result = CommandResult(
            command: shown, exitStatus: status, killedBySignal: signaled,
            standardOutput: Self.read(outPath), standardError: Self.read(errPath))
        if check && !result.succeeded { throw TestRealmError.commandFailed(result) }
        return result
    }

    static func read(_ path: String) -> String {
        guard let data = FileManager.default.contents(atPath: path) else { return "" }
        return String(decoding: data, as: UTF8.self)
    }

    /// The last `lines` lines of a text file ("" if it does not exist).
    static func tail(_ path: String, lines: Int = 30) -> String {
        read(path).split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }
}
