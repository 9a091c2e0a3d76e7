import CredSSP
import Foundation
import NIOCore
import NIOPosix

/// FreeRDP 2.11 (Debian `freerdp2-x11`, `freerdp2-shadow-x11`, `winpr-utils`) as the peer: `xfreerdp /auth-only`
/// (a CredSSP client) and `freerdp-shadow-cli /sec:nla` (a CredSSP server), each on an Xvfb display of its own
/// (`xfreerdp` refuses to start without a display, even for /auth-only), with HOME and XDG_CONFIG_HOME in a
/// temporary directory (FreeRDP writes its certificate store there).
enum FreeRDP {
    static let missing = "FreeRDP missing? Install it with: apt-get install freerdp2-x11 freerdp2-shadow-x11 winpr-utils xvfb"

    /// What a finished FreeRDP process left: its exit status and its output (stdout and stderr).
    struct Outcome: Sendable {
        var status: Int32
        var output: String
    }

    /// A temporary home and an Xvfb display for one FreeRDP process; ``close()`` stops Xvfb and removes the home.
    final class Display: @unchecked Sendable {
        let home: String
        let number: String
        private let xvfb = Process()

        init() throws {
            home = FileManager.default.temporaryDirectory.appendingPathComponent("credssp-freerdp-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
            // -displayfd: Xvfb picks a free display and writes its number once it accepts clients.
            let ready = Pipe()
            xvfb.executableURL = URL(fileURLWithPath: "/usr/bin/Xvfb")
            xvfb.arguments = ["-displayfd", "1", "-nolisten", "tcp", "-screen", "0", "800x600x24"]
            xvfb.standardOutput = ready
            xvfb.standardError = FileHandle.nullDevice
            do { try FreeRDP.launch(xvfb) } catch {
                try? FileManager.default.removeItem(atPath: home)
                throw Missing(what: "Xvfb: \(error)")
            }
            let line = FreeRDP.readLine(ready.fileHandleForReading)
            guard let line, !line.isEmpty, line.allSatisfy(\.isNumber) else {
                if xvfb.isRunning { xvfb.terminate() }
                try? FileManager.default.removeItem(atPath: home)
                throw Missing(what: "Xvfb printed no display number (\(line ?? "nothing"))")
            }
            number = line
        }

        var environment: [String: String] {
            ProcessInfo.processInfo.environment.merging(["DISPLAY": ":\(number)", "HOME": home, "XDG_CONFIG_HOME": home]) { $1 }
        }

        func close() {
            FreeRDP.stop(xvfb)
            try? FileManager.default.removeItem(atPath: home)
        }
    }

    struct Missing: Error, CustomStringConvertible {
        let what: String
        var description: String { "\(what) — \(FreeRDP.missing)" }
    }

    /// Starts `process` with no signal blocked. Foundation's `Process` hands the calling thread's signal mask to
    /// the child, and Swift's worker threads block nearly all signals: an Xvfb started from one ignores SIGTERM.
    static func launch(_ process: Process) throws {
        var none = sigset_t()
        sigemptyset(&none)
        var previous = sigset_t()
        pthread_sigmask(SIG_SETMASK, &none, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        try process.run()
    }

    /// Stops `process` (SIGTERM, then SIGKILL after 5 s) and waits for it.
    static func stop(_ process: Process) {
        guard process.isRunning else { return }
        process.terminate()
        for _ in 0..<50 where process.isRunning { usleep(100_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// Reads one line (without the newline) from `handle`, blocking.
    static func readLine(_ handle: FileHandle) -> String? {
        var bytes: [UInt8] = []
        while true {
            guard let byte = try? handle.read(upToCount: 1), let first = byte.first else {
                return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
            }
            if first == 0x0A { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(first)
        }
    }

    /// `xfreerdp /auth-only` to 127.0.0.1:`port`. The password goes through stdin (`/from-stdin:force`), never
    /// through argv, which any local user can read in /proc while the process runs.
    static func authenticate(port: Int, domain: String, user: String, password: String,
                             extra: [String] = []) async throws -> (arguments: [String], outcome: Outcome) {
        let display = try Display()
        defer { display.close() }
        // The connection state machine and NLA at DEBUG: "CONNECTION_STATE_NLA --> CONNECTION_STATE_MCS_CONNECT" once
        // CredSSP succeeded on FreeRDP's side, "CredSSP protocol support 6, peer supports N" for the versions.
        let arguments = ["/auth-only", "/u:\(user)", "/d:\(domain)", "/from-stdin:force", "/v:127.0.0.1:\(port)",
                         "/cert:ignore", "/log-filters:com.freerdp.core.connection:DEBUG,com.freerdp.core.nla:DEBUG"] + extra
        let outcome = try await run("/usr/bin/xfreerdp", arguments, environment: display.environment,
                                    stdin: password + "\n")
        return (arguments, outcome)
    }

    /// Runs a program to its end (killed after `timeout` seconds) on a thread of its own.
    static func run(_ path: String, _ arguments: [String], environment: [String: String], stdin: String?,
                    timeout: Double = 60) async throws -> Outcome {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        let input = Pipe()
        process.standardInput = input
        do { try launch(process) } catch { throw Missing(what: "\(path): \(error)") }
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try? input.fileHandleForWriting.close()
        return await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                let killer = DispatchWorkItem { if process.isRunning { process.terminate() } }
                DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: killer)
                let data = output.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                killer.cancel()
                continuation.resume(returning: Outcome(status: process.terminationStatus,
                                                       output: String(decoding: data, as: UTF8.self)))
            }
        }
    }
}

/// Raw loopback TCP (no framing): RDP's X.224 negotiation, then TLS and CredSSP on the byte stream.
enum RawLoopback {
    typealias RawChannel = NIOAsyncChannel<ByteBuffer, ByteBuffer>
    typealias Listener = NIOAsyncChannel<RawChannel, Never>

    static func listen() async throws -> (listener: Listener, port: Int) {
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture { try RawChannel(wrappingChannelSynchronously: channel) }
            }
        guard let port = listener.channel.localAddress?.port else { throw LoopbackTransport.NoPort() }
        return (listener, port)
    }

    /// Accepts one connection and runs the CredSSP server's RDP endpoint on it.
    static func serveRDP(_ server: CredSSPServer, on listener: Listener)
        async throws -> (result: Result<CredSSPCredentials, CredSSPError>, request: RDPConnectionRequest?)?
    {
        try await listener.executeThenClose { inbound in
            for try await connection in inbound {
                return try await connection.executeThenClose { input, output in
                    let seen = RequestBox()
                    do throws(CredSSPError) {
                        let credentials = try await server.runRDP(inbound: input, outbound: output) { seen.value = $0 }
                        return (.success(credentials), seen.value)
                    } catch {
                        return (.failure(error), seen.value)
                    }
                }
            }
            return nil
        }
    }

    final class RequestBox: @unchecked Sendable { var value: RDPConnectionRequest? }

    /// Connects to 127.0.0.1:`port` and runs the CredSSP client's RDP side.
    static func runRDPClient(_ client: CredSSPClient, port: Int,
                             request: RDPConnectionRequest = RDPConnectionRequest()) async throws -> Result<Void, CredSSPError> {
        let connection = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try RawChannel(wrappingChannelSynchronously: channel) }
            }
        return try await connection.executeThenClose { input, output in
            do throws(CredSSPError) {
                try await client.runRDP(inbound: input, outbound: output, request: request)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
    }
}
