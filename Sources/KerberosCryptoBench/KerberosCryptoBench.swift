import Foundation
@_spi(Interop) import KerberosCrypto
import TestRealm

/// `kerberos-crypto-bench`: sealed wrap+unwrap throughput of KerberosCrypto against the raw
/// OpenSSL primitives (`openssl speed`) and MIT krb5's gss_wrap+gss_unwrap, on one core.
/// Build with `-c release`. Starts a throwaway MIT realm (loopback, temp dir) for the MIT figures.
@main
struct KerberosCryptoBench {
    static let enctypes: [Enctype] = [.aes256CtsHmacSha1_96, .aes256CtsHmacSha384_192]
    static let sizes = [64 * 1024, 1024 * 1024]

    static func main() async throws {
        let seconds = Int(ProcessInfo.processInfo.environment["BENCH_SECONDS"] ?? "") ?? 1
        // The machine is shared: every figure is the best of `rounds` runs.
        let rounds = Int(ProcessInfo.processInfo.environment["BENCH_ROUNDS"] ?? "") ?? 3
        if ProcessInfo.processInfo.environment["BENCH_OURS_ONLY"] != nil {
            // Only KerberosCrypto's own loop (for profilers).
            for enctype in enctypes {
                for size in sizes {
                    let r = try ProtectionBenchmark.wrapUnwrap(enctype: enctype, messageSize: size, duration: .seconds(seconds))
                    print(String(format: "%@ %d: %.0f MB/s", enctype.name, size, r.megabytesPerSecond))
                }
            }
            return
        }
        print("CPU: \(cpuModel())")
        print("OpenSSL: \(run("/usr/bin/openssl", ["version"]).trimmingCharacters(in: .whitespacesAndNewlines))")
        print("Sealed wrap + unwrap, one core, message MB/s (10^6 octets/s) per CPU second (as openssl speed counts);")
        print("best of \(rounds) x \(seconds) s CPU\n")

        // Raw primitive rates at each size.
        var primitives: [Int: (enc: Double, dec: Double, sha1: Double, sha384: Double)] = [:]
        for size in sizes {
            func best(_ arguments: [String]) -> Double {
                (0..<rounds).map { _ in opensslSpeed(arguments, size, seconds) }.max() ?? .nan
            }
            let enc = best(["-evp", "aes-256-cbc"])
            let dec = best(["-evp", "aes-256-cbc", "-decrypt"])
            let sha1 = best(["-evp", "sha1"])
            let sha384 = best(["-evp", "sha384"])
            primitives[size] = (enc, dec, sha1, sha384)
            print(String(format: "openssl speed %7d B: aes-256-cbc enc %8.0f  dec %8.0f  sha1 %8.0f  sha384 %8.0f MB/s",
                         size, enc, dec, sha1, sha384))
        }

        // MIT contexts in a private realm that allows the RFC 8009 enctypes too.
        let realm = try await TestRealm.start(.init(name: "BENCH.TEST", encryptionTypes: [
            "aes256-cts-hmac-sha384-192", "aes128-cts-hmac-sha256-128",
            "aes256-cts-hmac-sha1-96", "aes128-cts-hmac-sha1-96"]))
        defer { Task { await realm.shutdown() } }
        for (key, value) in realm.environment { setenv(key, value, 1) }
        try await realm.addPrincipal("bench/bench.test")
        let keytab = try await realm.exportKeytab(["bench/bench.test"])
        try await realm.addPrincipal("benchuser", password: "bench-password")
        let ccache = try await realm.kinit("benchuser", password: "bench-password")

        print("")
        print("enctype                      size      ours    MIT   ours/MIT  limit  ours/limit")
        for enctype in enctypes {
            try interopCheck(enctype: enctype, ccache: ccache, keytab: keytab)
            for size in sizes {
                var ours = 0.0, mit = 0.0
                for _ in 0..<rounds {
                    ours = max(ours, try ProtectionBenchmark.wrapUnwrap(enctype: enctype, messageSize: size,
                                                                        duration: .seconds(seconds)).megabytesPerSecond)
                    mit = max(mit, try mitWrapUnwrap(enctype: enctype, size: size, seconds: seconds,
                                                     ccache: ccache, keytab: keytab))
                }
                let p = primitives[size]!
                let hash = enctype == .aes256CtsHmacSha1_96 ? p.sha1 : p.sha384
                // Each message is encrypted once, decrypted once and HMACed twice.
                let limit = 1 / (1 / p.enc + 1 / p.dec + 2 / hash)
                print(String(format: "%-26@ %7d  %7.0f  %5.0f  %7.1fx  %5.0f  %8.0f%%",
                             enctype.name as NSString, size, ours, mit, ours / mit, limit, 100 * ours / limit))
            }
        }
        await realm.shutdown()
    }

    /// A quick check that MIT accepts our tokens for `enctype` and we accept MIT's (both roles).
    static func interopCheck(enctype: Enctype, ccache: String, keytab: String) throws {
        let (initiator, acceptor) = try MITGSSContext.establish(initiatorCCache: ccache, acceptorKeytab: keytab,
                                                                target: "bench@bench.test", enctypes: [enctype.rawValue])
        let lucid = try initiator.exportLucid()
        guard lucid.contextKey.enctype == enctype else {
            throw KerberosCryptoError.invalidKey("negotiated \(lucid.contextKey.enctype), not \(enctype)")
        }
        let ours = try ProtectionContext(lucid: lucid)
        let message = [UInt8](repeating: 0x5A, count: 4099)
        for confidential in [true, false] {
            guard try acceptor.unwrap(ours.wrap(message, confidential: confidential)).message == message,
                  try ours.unwrap(acceptor.wrap(message, confidential: confidential)).data == message else {
                throw KerberosCryptoError.badSignature("interop check failed for \(enctype)")
            }
        }
        try acceptor.verifyMIC(message, token: ours.getMIC(message))
        try ours.verifyMIC(message, token: acceptor.getMIC(message))
        print("interop with MIT gss_wrap/gss_unwrap/MIC (\(enctype.name), acceptor subkey \(lucid.acceptorSubkey != nil)): ok")
    }

    /// MIT gss_wrap (sealed) + gss_unwrap of `size` octets per second, in MB/s.
    static func mitWrapUnwrap(enctype: Enctype, size: Int, seconds: Int, ccache: String, keytab: String) throws -> Double {
        let (initiator, acceptor) = try MITGSSContext.establish(initiatorCCache: ccache, acceptorKeytab: keytab,
                                                                target: "bench@bench.test", enctypes: [enctype.rawValue])
        let message = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64)
        defer { message.deallocate() }
        message.initializeMemory(as: UInt8.self, repeating: 0xA5)
        try initiator.wrapUnwrap(message, peer: acceptor)
        let start = ProtectionBenchmark.threadCPUSeconds()
        var iterations = 0
        var elapsed = 0.0
        while elapsed < Double(seconds) {
            try initiator.wrapUnwrap(message, peer: acceptor)
            iterations += 1
            elapsed = ProtectionBenchmark.threadCPUSeconds() - start
        }
        return Double(size * iterations) / elapsed / 1e6
    }

    /// `openssl speed` rate in MB/s for one block size.
    static func opensslSpeed(_ arguments: [String], _ size: Int, _ seconds: Int) -> Double {
        let output = run("/usr/bin/openssl", ["speed"] + arguments + ["-bytes", "\(size)", "-seconds", "\(seconds)"])
        guard let line = output.split(separator: "\n").last,
              let field = line.split(separator: " ").last, field.hasSuffix("k"),
              let kilobytes = Double(field.dropLast()) else { return .nan }
        return kilobytes / 1000
    }

    static func cpuModel() -> String {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let line = info.split(separator: "\n").first { $0.hasPrefix("model name") }
        return line.map { $0.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "" } ?? "unknown"
    }

    static func run(_ executable: String, _ arguments: [String]) -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return "" }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}
