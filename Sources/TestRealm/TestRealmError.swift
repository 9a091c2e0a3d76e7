import Foundation

/// A failure while creating, running or tearing down a ``TestRealm``.
public enum TestRealmError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A child program ran and exited unsuccessfully.
    case commandFailed(CommandResult)
    /// A child program could not be started at all.
    case launchFailed(executable: String, reason: String)
    /// `krb5kdc` did not come up; carries the last lines of its log.
    case kdcDidNotStart(port: UInt16, reason: String, logTail: String)
    /// The private `slapd` (LDAP back end) did not come up; carries the last lines of its output.
    case ldapServerDidNotStart(port: UInt16, reason: String, logTail: String)
    /// No free loopback port could be found.
    case noFreePort(reason: String)
    /// A file in the realm directory could not be written or read.
    case fileSystem(path: String, reason: String)
    /// The operation needs a back end this realm does not use (e.g. delegation lists on DB2).
    case unsupportedByBackend(operation: String, backend: KDCBackend)
    /// The realm was already shut down.
    case realmShutDown(name: String)
    /// An argument was rejected before any program ran.
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .commandFailed(let result):
            return "command failed: \(result.description)"
        case .launchFailed(let executable, let reason):
            return "could not launch \(executable): \(reason)"
        case .kdcDidNotStart(let port, let reason, let logTail):
            return "krb5kdc did not start on 127.0.0.1:\(port): \(reason)\n--- KDC log tail ---\n\(logTail)"
        case .ldapServerDidNotStart(let port, let reason, let logTail):
            return "slapd did not start on 127.0.0.1:\(port): \(reason)\n--- slapd output tail ---\n\(logTail)"
        case .noFreePort(let reason):
            return "no free loopback port: \(reason)"
        case .fileSystem(let path, let reason):
            return "file system error at \(path): \(reason)"
        case .unsupportedByBackend(let operation, let backend):
            return "\(operation) is not supported by the \(backend) back end"
        case .realmShutDown(let name):
            return "realm \(name) is shut down"
        case .invalidArgument(let message):
            return "invalid argument: \(message)"
        }
    }

    /// The failed command's result, if this error is `.commandFailed`.
    public var commandResult: CommandResult? {
        if case .commandFailed(let result) = self { return result }
        return nil
    }
}

/// What a child program did: its argv (secrets redacted), exit status and output.
public struct CommandResult: Sendable, Equatable, CustomStringConvertible {
    /// Executable path followed by its arguments, as passed (secrets replaced by `<redacted>`).
    public var command: [String]
    /// Exit status, or the signal number when ``killedBySignal`` is true.
    public var exitStatus: Int32
    /// True when the program was ended by a signal.
    public var killedBySignal: Bool
    public var standardOutput: String
    public var standardError: String

    public init(command: [String], exitStatus: Int32, killedBySignal: Bool = false,
                standardOutput: String, standardError: String) {
        self.command = command
        self.exitStatus = exitStatus
        self.killedBySignal = killedBySignal
        self.standardOutput = standardOutput
        self.standardError = standardError
    }

    /// True when the program exited normally with status 0.
    public var succeeded: Bool { !killedBySignal && exitStatus == 0 }

    public var description: String {
        let argv = command.map { $0.contains(" ") || $0.isEmpty ? "'\($0)'" : $0 }.joined(separator: " ")
        let status = killedBySignal ? "killed by signal \(exitStatus)" : "exit status \(exitStatus)"
        let err = standardError.trimmingCharacters(in: .whitespacesAndNewlines)
        return "\(argv) → \(status)" + (err.isEmpty ? "" : ": \(err)")
    }
}
