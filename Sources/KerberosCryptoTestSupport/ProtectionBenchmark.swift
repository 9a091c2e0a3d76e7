#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import KerberosCrypto

/// Throughput of sealed wrap + unwrap through ``ProtectionContext`` on one core, for
/// `kerberos-crypto-bench` (figures in docs/fast-protection.md).
package enum ProtectionBenchmark {
    /// One measurement: message octets moved through wrap+unwrap per second.
    package struct Result: Sendable {
        package let enctype: Enctype
        package let messageSize: Int
        package let iterations: Int
        package let seconds: Double
        /// Message octets per second, in MB/s (10^6 octets, as `openssl speed` counts).
        package var megabytesPerSecond: Double { Double(messageSize * iterations) / seconds / 1e6 }
    }

    /// Wraps (sealed) into a preallocated token buffer and unwraps it in place, repeatedly, for at
    /// least `duration` of thread CPU time, between an initiator and an acceptor with random keys.
    package static func wrapUnwrap(enctype: Enctype, messageSize: Int,
                                  duration: Duration = .seconds(2)) throws -> Result {
        var keyBytes = [UInt8](repeating: 0, count: enctype.keyLength)
        try keyBytes.withUnsafeMutableBytes { try LibCrypto.randomBytes($0) }
        let key = try KerberosKey(enctype: enctype, bytes: keyBytes)
        try keyBytes.withUnsafeMutableBytes { try LibCrypto.randomBytes($0) }
        let subkey = try KerberosKey(enctype: enctype, bytes: keyBytes)
        let initiator = try ProtectionContext(role: .initiator, contextKey: key, acceptorSubkey: subkey,
                                              sendSequenceNumber: 1, receiveSequenceNumber: 1)
        let acceptor = try ProtectionContext(role: .acceptor, contextKey: key, acceptorSubkey: subkey,
                                             sendSequenceNumber: 1, receiveSequenceNumber: 1)
        let message = UnsafeMutableRawBufferPointer.allocate(byteCount: max(messageSize, 1), alignment: 64)
        defer { message.deallocate() }
        try LibCrypto.randomBytes(UnsafeMutableRawBufferPointer(rebasing: message[0..<messageSize]))
        let input = UnsafeRawBufferPointer(rebasing: message[0..<messageSize])
        let tokenLength = initiator.wrappedLength(messageLength: messageSize)
        let token = UnsafeMutableRawBufferPointer.allocate(byteCount: tokenLength, alignment: 64)
        defer { token.deallocate() }

        // Warm-up (page faults, key schedules, lazy provider loading).
        try initiator.wrap(input, into: token)
        _ = try acceptor.unwrap(inPlace: token)
        let limit = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        var iterations = 0
        let start = threadCPUSeconds()
        var seconds = 0.0
        while seconds < limit {
            for _ in 0..<8 {
                try initiator.wrap(input, into: token)
                _ = try acceptor.unwrap(inPlace: token)
            }
            iterations += 8
            seconds = threadCPUSeconds() - start
        }
        return Result(enctype: enctype, messageSize: messageSize, iterations: iterations, seconds: seconds)
    }

    /// CPU time of the calling thread in seconds. Like `openssl speed` (which counts CPU time
    /// unless given `-elapsed`), this keeps figures comparable on a busy, shared machine.
    package static func threadCPUSeconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}
