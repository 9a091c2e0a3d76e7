import Foundation
import GSS
import TestSupport
import KerberosCrypto
import KerberosCryptoTestSupport
import TestRealm

/// `kerberos-crypto-bench`: sealed wrap+unwrap throughput, one core, in one run: MIT krb5's
/// gss_wrap+gss_unwrap, the public `GSS` API (which picks KerberosCrypto automatically), the raw
/// `ProtectionContext`, and the OpenSSL primitives' limit (`openssl speed`), per enctype.
/// Build with `-c release`. Starts a throwaway MIT realm (loopback, temp dir) for the contexts.
@main
struct KerberosCryptoBench {
    static let enctypes = Enctype.allCases
    static let sizes = [64 * 1024, 1024 * 1024]

    /// What to run, from the environment (`BENCH_SECONDS`, `BENCH_ROUNDS`, `BENCH_ENCTYPES`,
    /// `BENCH_SIZES`, `BENCH_OURS_ONLY`).
    struct Settings {
        var seconds: Int
        /// The machine is shared: every figure is the best of `rounds` runs.
        var rounds: Int
        var enctypes: [Enctype]
        var sizes: [Int]
        var oursOnly: Bool

        init(_ environment: [String: String]) {
            seconds = Int(environment["BENCH_SECONDS"] ?? "") ?? 1
            rounds = Int(environment["BENCH_ROUNDS"] ?? "") ?? 3
            let selected = environment["BENCH_ENCTYPES"].map { $0.split(separator: ",").compactMap { Int32($0) } }
            enctypes = selected.map { list in KerberosCryptoBench.enctypes.filter { list.contains($0.rawValue) } }
                ?? KerberosCryptoBench.enctypes
            sizes = environment["BENCH_SIZES"].map { $0.split(separator: ",").compactMap { Int($0) } }
                ?? KerberosCryptoBench.sizes
            oursOnly = environment["BENCH_OURS_ONLY"] != nil
        }
    }

    static func main() async throws {
        let settings = Settings(ProcessInfo.processInfo.environment)
        if settings.oursOnly { return try oursOnly(settings) }
        print("CPU: \(cpuModel())")
        print("OpenSSL: \(run("/usr/bin/openssl", ["version"]).trimmingCharacters(in: .whitespacesAndNewlines))")
        print("Sealed wrap + unwrap, one core, message MB/s (10^6 octets/s) per CPU second (as openssl speed counts);")
        print("best of \(settings.rounds) x \(settings.seconds) s CPU\n")
        let rates = primitiveRates(settings)
        // Contexts in a private realm that allows all four enctypes.
        try await TestRealm.withRealm(.init(name: "BENCH.TEST", encryptionTypes: [ "aes256-cts-hmac-sha384-192", "aes128-cts-hmac-sha256-128", "aes256-cts-hmac-sha1-96", "aes128-cts-hmac-sha1-96"])) { realm in
            for (key, value) in realm.environment { setenv(key, value, 1) }
            try await realm.addPrincipal("bench/bench.test")
            let keytab = try await realm.exportKeytab(["bench/bench.test"])
            try await realm.addPrincipal("benchuser", password: "bench-password")
            let ccache = try await realm.kinit("benchuser", password: "bench-password")
            try compare(settings, rates: rates, endpoints: GSSEndpoints(ccache: ccache, keytab: keytab))
            await realm.shutdown()
        }
    }

    /// Only KerberosCrypto's own loop (for profilers).
    static func oursOnly(_ settings: Settings) throws {
        for enctype in settings.enctypes {
            for size in settings.sizes {
                let r = try ProtectionBenchmark.wrapUnwrap(enctype: enctype, messageSize: size,
                                                           duration: .seconds(settings.seconds))
                print(String(format: "%@ %d: %.0f MB/s", enctype.name, size, r.megabytesPerSecond))
            }
        }
    }

    /// The OpenSSL primitives' rates at each size (`openssl speed`), printed and keyed
    /// `"<name> <size>"`, e.g. `"aes-128-cbc enc 65536"`.
    static func primitiveRates(_ settings: Settings) -> [String: Double] {
        var rates: [String: Double] = [:]
        for size in settings.sizes {
            func best(_ arguments: [String]) -> Double {
                (0..<settings.rounds).map { _ in opensslSpeed(arguments, size, settings.seconds) }.max() ?? .nan
            }
            var line = String(format: "openssl speed %7d B:", size)
            for (name, arguments) in [("aes-128-cbc enc", ["-evp", "aes-128-cbc"]),
                                      ("aes-128-cbc dec", ["-evp", "aes-128-cbc", "-decrypt"]),
                                      ("aes-256-cbc enc", ["-evp", "aes-256-cbc"]),
                                      ("aes-256-cbc dec", ["-evp", "aes-256-cbc", "-decrypt"]),
                                      ("sha1", ["-evp", "sha1"]), ("sha256", ["-evp", "sha256"]),
                                      ("sha384", ["-evp", "sha384"])] {
                let rate = best(arguments)
                rates["\(name) \(size)"] = rate
                line += String(format: "  %@ %.0f", name, rate)
            }
            print(line + " MB/s")
        }
        return rates
    }

    /// The comparison table: MIT, the public GSS API (arrays and in place), the raw
    /// `ProtectionContext` and the primitives' limit, per enctype and size.
    static func compare(_ settings: Settings, rates: [String: Double], endpoints: GSSEndpoints) throws {
        print("")
        print("MIT = gss_wrap+gss_unwrap (MIT's C, built-in crypto); GSS = public GSS API wrap/unwrap (arrays);")
        print("GSS in place = wrapInPlace/unwrapInPlace; raw = ProtectionContext into a preallocated buffer;")
        print("limit = 1/(1/enc + 1/dec + 2/hash) from openssl speed (each message is encrypted, decrypted, hashed twice)")
        print("")
        print("enctype                      size      MIT     GSS  in place    raw   limit  GSS/MIT  in place/MIT  GSS/limit  in place/limit")
        let seconds = settings.seconds
        for enctype in settings.enctypes {
            try interopCheck(enctype: enctype, ccache: endpoints.ccache, keytab: endpoints.keytab)
            for size in settings.sizes {
                var mit = 0.0, gss = 0.0, inPlace = 0.0, raw = 0.0
                for _ in 0..<settings.rounds {
                    mit = max(mit, try mitWrapUnwrap(enctype: enctype, size: size, seconds: seconds,
                                                     ccache: endpoints.ccache, keytab: endpoints.keytab))
                    gss = max(gss, try endpoints.wrapUnwrap(enctype: enctype, size: size, seconds: seconds, inPlace: false))
                    inPlace = max(inPlace, try endpoints.wrapUnwrap(enctype: enctype, size: size, seconds: seconds, inPlace: true))
                    raw = max(raw, try ProtectionBenchmark.wrapUnwrap(enctype: enctype, messageSize: size,
                                                                      duration: .seconds(seconds)).megabytesPerSecond)
                }
                let limit = primitiveLimit(enctype: enctype, size: size, rates: rates)
                print(String(format: "%-26@ %7d  %7.0f  %6.0f  %8.0f  %5.0f  %6.0f  %6.1fx  %11.1fx  %8.0f%%  %13.0f%%",
                             enctype.name as NSString, size, mit, gss, inPlace, raw, limit, gss / mit, inPlace / mit,
                             100 * gss / limit, 100 * inPlace / limit))
            }
        }
    }

    /// 1/(1/enc + 1/dec + 2/hash): each message is encrypted, decrypted and hashed twice.
    static func primitiveLimit(enctype: Enctype, size: Int, rates: [String: Double]) -> Double {
        let aes = enctype.keyLength == 16 ? "aes-128-cbc" : "aes-256-cbc"
        let hash = switch enctype {
        case .aes128CtsHmacSha1_96, .aes256CtsHmacSha1_96: "sha1"
        case .aes128CtsHmacSha256_128: "sha256"
        case .aes256CtsHmacSha384_192: "sha384"
        }
        let enc = rates["\(aes) enc \(size)"] ?? .nan, dec = rates["\(aes) dec \(size)"] ?? .nan
        return 1 / (1 / enc + 1 / dec + 2 / (rates["\(hash) \(size)"] ?? .nan))
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

/// GSS contexts through the public API (the automatic KerberosCrypto path), one pair per run.
struct GSSEndpoints {
    let ccache: String
    let keytab: String

    /// Sealed wrap on the initiator + unwrap on the acceptor, in MB/s of message per CPU second.
    /// `inPlace`: the message sits inside a token buffer between room for the header and the
    /// trailer; `wrapInPlace` encrypts it there and `unwrapInPlace` decrypts it back in place.
    func wrapUnwrap(enctype: Enctype, size: Int, seconds: Int, inPlace: Bool) throws -> Double {
        let credential = try GSSCredential.acquire(store: GSSCredentialStore(ccache: ccache))
        try credential.setAllowableEnctypes([enctype.rawValue])
        var initiator = GSSInitiatorContext(target: try GSSName("bench@bench.test", kind: .hostBasedService),
                                            credential: credential)
        var acceptor = GSSAcceptorContext(credential: try GSSCredential.acquire(
            usage: .accept, store: GSSCredentialStore(keytab: keytab)))
        try InMemoryEstablishment.establish(&initiator, &acceptor)
        let message = [UInt8](repeating: 0xA5, count: size)
        var iterations = 0
        var elapsed = 0.0
        if inPlace {
            let headerRoom = 32, trailerRoom = 16 + 24
            var buffer = [UInt8](repeating: 0, count: headerRoom + size + trailerRoom)
            buffer.replaceSubrange(headerRoom..<(headerRoom + size), with: message)
            func once() throws {
                try buffer.withUnsafeMutableBytes { raw in
                    let parts = try initiator.wrapInPlace(UnsafeMutableRawBufferPointer(rebasing: raw[headerRoom..<(headerRoom + size)]))
                    guard parts.header.count == headerRoom, parts.padding.isEmpty, parts.trailer.count <= trailerRoom else {
                        throw KerberosCryptoError.bufferTooSmall(needed: parts.header.count + parts.trailer.count)
                    }
                    raw.baseAddress!.copyMemory(from: parts.header, byteCount: headerRoom)
                    (raw.baseAddress! + headerRoom + size).copyMemory(from: parts.trailer, byteCount: parts.trailer.count)
                    let token = UnsafeMutableRawBufferPointer(rebasing: raw[0..<(headerRoom + size + parts.trailer.count)])
                    let range = try acceptor.unwrapInPlace(token).range
                    guard range == headerRoom..<(headerRoom + size) else {
                        throw KerberosCryptoError.defectiveToken("plaintext not where it was")
                    }
                }
            }
            try once()
            guard buffer[headerRoom..<(headerRoom + size)].elementsEqual(message) else {
                throw KerberosCryptoError.badSignature("in-place round trip changed the message")
            }
            let start = ProtectionBenchmark.threadCPUSeconds()
            while elapsed < Double(seconds) {
                try once()
                iterations += 1
                elapsed = ProtectionBenchmark.threadCPUSeconds() - start
            }
        } else {
            guard try acceptor.unwrap(initiator.wrap(message)).message == message else {
                throw KerberosCryptoError.badSignature("GSS round trip changed the message")
            }
            let start = ProtectionBenchmark.threadCPUSeconds()
            while elapsed < Double(seconds) {
                _ = try acceptor.unwrap(initiator.wrap(message))
                iterations += 1
                elapsed = ProtectionBenchmark.threadCPUSeconds() - start
            }
        }
        guard initiator.protectionPath == .kerberosCrypto(enctype: enctype.rawValue) else {
            throw KerberosCryptoError.invalidKey("GSS did not take the fast path: \(initiator.protectionPath)")
        }
        return Double(size * iterations) / elapsed / 1e6
    }
}
