@testable import CredSSP
import Foundation
import Testing

/// After a sign-off (the delivered credentials wiped, both machines gone) no copy of the password in the form CredSSP
/// handles it (UTF-16LE, as in TSPasswordCreds) is left anywhere in the process's writable memory: not in the
/// client's encoding buffers, not in the server's decrypted TSCredentials, not in the Kerberos unwrap output.
/// (The test's own `String`s hold the password as UTF-8 and are not searched for.)
@Suite struct CredSSPPasswordCopyTests {
    /// How often the bytes whose complement is `inverted` occur in this process's private writable mappings (heap,
    /// anonymous memory, stacks). The needle is kept complemented so that the search itself holds no copy.
    static func occurrences(ofComplement inverted: [UInt8]) throws -> Int {
        let maps = try procFile("/proc/self/maps")
        let memory = open("/proc/self/mem", O_RDONLY)
        guard memory >= 0 else { throw POSIXError(.EACCES) }
        defer { close(memory) }
        var found = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        for line in maps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 5, fields[1].hasPrefix("rw"), fields[4] == "0" || fields.count == 5 else { continue }
            let bounds = fields[0].split(separator: "-")
            guard bounds.count == 2, let start = UInt64(bounds[0], radix: 16), let end = UInt64(bounds[1], radix: 16) else { continue }
            var offset = start
            while offset < end {
                let want = Int(min(UInt64(buffer.count), end - offset))
                let got = buffer.withUnsafeMutableBytes { pread(memory, $0.baseAddress, want, off_t(truncatingIfNeeded: offset)) }
                // A page that cannot be read (a mapping changed by another thread since maps was read) is skipped,
                // not the rest of the mapping.
                if got <= 0 { offset += 4096; continue }
                found += count(complement: inverted, in: buffer, length: got)
                // Overlap chunks so a copy across a boundary is found too.
                offset += UInt64(max(1, got - (got == want && offset + UInt64(got) < end ? inverted.count : 0)))
            }
        }
        return found
    }

    /// A /proc file read to its end. (`String(contentsOfFile:)` stops early on /proc/self/maps: 76 of several hundred
    /// mappings in a full parallel run, so the search missed most of the heap.)
    static func procFile(_ path: String) throws -> String {
        let file = open(path, O_RDONLY)
        guard file >= 0 else { throw POSIXError(.EACCES) }
        defer { close(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let got = chunk.withUnsafeMutableBytes { read(file, $0.baseAddress, $0.count) }
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else { break }
            bytes += chunk[0..<got]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The maps line holding `address` (for a failure message).
    static func mapping(containing address: UInt64) -> String {
        let maps = (try? procFile("/proc/self/maps")) ?? ""
        let lines = maps.split(separator: "\n")
        for line in lines {
            let bounds = line.split(separator: " ").first?.split(separator: "-") ?? []
            if bounds.count == 2, let start = UInt64(bounds[0], radix: 16), let end = UInt64(bounds[1], radix: 16),
               start <= address, address < end { return "0x\(String(address, radix: 16)) in \(line) (\(lines.count) mappings)" }
        }
        return "0x\(String(address, radix: 16)) in no mapping of \(lines.count)"
    }

    static func count(complement inverted: [UInt8], in haystack: [UInt8], length: Int) -> Int {
        guard inverted.count <= length, let first = inverted.first else { return 0 }
        var found = 0
        haystack.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            var index = 0
            while index + inverted.count <= length {
                guard let hit = memchr(base + index, Int32(~first), length - index - inverted.count + 1) else { break }
                let position = base.distance(to: UnsafeRawPointer(hit))
                if (0..<inverted.count).allSatisfy({ raw[position + $0] == ~inverted[$0] }) { found += 1 }
                index = position + 1
            }
        }
        return found
    }

    /// The complement of `string`'s UTF-16LE bytes.
    static func complementUTF16LE(_ string: String) -> [UInt8] {
        string.utf16.flatMap { [~UInt8(truncatingIfNeeded: $0), ~UInt8(truncatingIfNeeded: $0 >> 8)] }
    }

    @Test func noPasswordCopyRemainsAfterSignOff() async throws {
        let service = try await KerberosService.make()
        let pattern = Self.complementUTF16LE(service.password)
        do {
            let client = try CredSSPClient(
                credentials: CredSSPCredentials(domain: service.realm.name, user: service.user, password: service.password),
                inner: try await service.initiator(), verification: .insecureAcceptAny)
            let server = try service.server(policy: CredSSPPolicy())
            let outcome = await Exchange.run(client: client, server: server)
            let credentials = try #require(outcome.credentials)
            #expect(credentials.withPasswordUTF16LE { $0.map { ~$0 } == pattern })
            #expect(credentials.password == service.password)  // the String getter's UTF-16 scratch buffer is wiped
            let address = credentials.withPasswordUTF16LE { $0.withUnsafeBufferPointer { UInt64(UInt(bitPattern: $0.baseAddress)) } }
            // the delivered credentials: the search does find it
            #expect(try Self.occurrences(ofComplement: pattern) >= 1, "\(Self.mapping(containing: address))")
            credentials.wipe()
        }
        // The machines' deinit runs on their session thread, after the last reference went away; in a full parallel
        // run that shared thread may be busy with other suites' sessions for a while (up to 15 s allowed).
        var left = try Self.occurrences(ofComplement: pattern)
        for _ in 0..<150 where left > 0 {
            try await Task.sleep(for: .milliseconds(100))
            left = try Self.occurrences(ofComplement: pattern)
        }
        #expect(left == 0, "\(left) UTF-16LE copies of the password remain in memory")
    }
}
