import Foundation

/// A pyspnego peer script (Tests/CredSSPTests/peer/*.py) and its output lines.
final class PeerProcess: @unchecked Sendable {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("peer").path
    static let missing = "pyspnego missing? Install it with: pip install 'pyspnego[kerberos]'"

    private let process = Process()
    private let output = Pipe()
    private let lock = NSLock()
    private var buffer = Data()

    init(script: String, arguments: [String], environment: [String: String]) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "\(Self.directory)/\(script)"] + arguments
        // No __pycache__ next to the scripts (peer_common is imported).
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            .merging(["PYTHONDONTWRITEBYTECODE": "1"]) { $1 }
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    /// The next output line, read on a thread of its own (the scripts time out by themselves after 60 s).
    func line() async -> String? {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: self.readLine()) }
        }
    }

    /// The port a server script prints first ("PORT n"), or nil with the line it printed instead.
    func port() async -> (Int?, String) {
        let first = await line() ?? "(no output)"
        guard first.hasPrefix("PORT "), let port = Int(first.dropFirst(5)) else { return (nil, first) }
        return (port, first)
    }

    private func readLine() -> String? {
        lock.lock()
        defer { lock.unlock() }
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let text = String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self)
                buffer = Data(buffer[(newline + 1)...])
                return text
            }
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { return nil }
            buffer.append(chunk)
        }
    }

    deinit { if process.isRunning { process.terminate() } }
}
